"""Concurrent requests through boto3 against one server are all served, and the counts add up."""

from concurrent.futures import ThreadPoolExecutor

THREADS = 16
THINGS_PER_THREAD = 10
CERTS_PER_THREAD = 2


def test_concurrent_creates(server, iot):
    # botocore clients are thread-safe once built; build them up front (client creation is not)
    clients = [server.iot() for _ in range(THREADS)]

    def work(i):
        c = clients[i]
        names, certs = [], []
        for j in range(THINGS_PER_THREAD):
            names.append(c.create_thing(thingName=f"t{i:02d}-{j:02d}",
                                        attributePayload={"attributes": {"worker": str(i)}})["thingName"])
            if j < CERTS_PER_THREAD:
                certs.append(c.create_keys_and_certificate(setAsActive=(j % 2 == 0))["certificateId"])
        # every worker also races on one shared name: CreateThing is idempotent with the same config
        c.create_thing(thingName="shared", attributePayload={"attributes": {"k": "v"}})
        return names, certs

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS), timeout=240))

    names = [n for ns, _ in results for n in ns]
    certs = [c for _, cs in results for c in cs]
    assert len(names) == THREADS * THINGS_PER_THREAD
    assert len(set(certs)) == THREADS * CERTS_PER_THREAD

    listed = [t["thingName"] for p in iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 50})
              for t in p["things"]]
    assert sorted(listed) == sorted(names + ["shared"])
    listed_certs = [c for p in iot.get_paginator("list_certificates").paginate(PaginationConfig={"PageSize": 10})
                    for c in p["certificates"]]
    assert sorted(c["certificateId"] for c in listed_certs) == sorted(certs)
    assert sum(c["status"] == "ACTIVE" for c in listed_certs) == THREADS
    assert iot.describe_thing(thingName="shared")["version"] == 1
    by_worker = iot.list_things(attributeName="worker", attributeValue="7", maxResults=250)["things"]
    assert len(by_worker) == THINGS_PER_THREAD


def _race(server, n, fn):
    """Run fn(client, i) on n threads at once; return (successes, error codes)."""
    import botocore.exceptions

    clients = [server.iot() for _ in range(n)]

    def one(i):
        try:
            return ("ok", fn(clients[i], i))
        except botocore.exceptions.ClientError as e:
            return ("err", e.response["Error"]["Code"])

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n), timeout=120))
    return [r for k, r in results if k == "ok"], [r for k, r in results if k == "err"]


POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


def test_racing_creates_of_one_policy(server, iot):
    ok, errs = _race(server, 16, lambda c, i: c.create_policy(policyName="contended", policyDocument=POLICY))
    assert len(ok) == 1 and errs == ["ResourceAlreadyExistsException"] * 15
    assert [v["versionId"] for v in iot.list_policy_versions(policyName="contended")["policyVersions"]] == ["1"]


def test_racing_policy_versions_respect_the_limit(server, iot):
    iot.create_policy(policyName="v", policyDocument=POLICY)
    ok, errs = _race(server, 12, lambda c, i: c.create_policy_version(policyName="v", policyDocument=POLICY))
    assert len(ok) == 4 and errs == ["VersionsLimitExceededException"] * 8
    versions = iot.list_policy_versions(policyName="v")["policyVersions"]
    assert sorted(int(v["versionId"]) for v in versions) == [1, 2, 3, 4, 5]
    assert sum(v["isDefaultVersion"] for v in versions) == 1


def test_racing_optimistic_updates(server, iot):
    iot.create_thing(thingName="t")
    ok, errs = _race(server, 12, lambda c, i: c.update_thing(
        thingName="t", expectedVersion=1, attributePayload={"attributes": {"writer": str(i)}}))
    assert len(ok) == 1 and errs == ["VersionConflictException"] * 11
    assert iot.describe_thing(thingName="t")["version"] == 2
