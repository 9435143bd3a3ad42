"""Policies: validation, versions, attachments (certificates, thing groups, deprecated principal APIs), effective
policies."""

import json

import pytest

from helpers import expect_error, nothing_stored


def doc(action="iot:Connect", resource="*", effect="Allow"):
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": effect, "Action": action, "Resource": resource}]})


def test_create_get_list(server, iot):
    acct = server.default.id
    d = doc(["iot:Publish", "iot:Receive"], f"arn:aws:iot:us-east-1:{acct}:topic/a/*")
    r = iot.create_policy(policyName="pub.sub@x=1", policyDocument=d)
    assert r["policyName"] == "pub.sub@x=1"
    assert r["policyArn"] == f"arn:aws:iot:us-east-1:{acct}:policy/pub.sub@x=1"
    assert r["policyVersionId"] == "1"
    assert json.loads(r["policyDocument"]) == json.loads(d)

    g = iot.get_policy(policyName="pub.sub@x=1")
    assert g["policyName"] == "pub.sub@x=1" and g["policyArn"] == r["policyArn"]
    assert g["defaultVersionId"] == "1"
    assert json.loads(g["policyDocument"]) == json.loads(d)
    assert g["creationDate"] and g["lastModifiedDate"] and g["generationId"]

    with nothing_stored(iot):
        with expect_error("ResourceAlreadyExistsException", 409):
            iot.create_policy(policyName="pub.sub@x=1", policyDocument=doc())
        with expect_error("ResourceNotFoundException", 404):
            iot.get_policy(policyName="missing")
        with expect_error("ResourceNotFoundException", 404):
            iot.delete_policy(policyName="missing")


def test_list_policies_marker_paging(server, iot):
    names = [f"p{i}" for i in range(4)]
    for n in names:
        iot.create_policy(policyName=n, policyDocument=doc())
    pages = list(iot.get_paginator("list_policies").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 4
    assert all(len(p["policies"]) == 1 for p in pages)
    assert all("nextMarker" in p for p in pages[:-1]) and not pages[-1].get("nextMarker")
    assert sorted(x["policyName"] for p in pages for x in p["policies"]) == names
    # one page of 2, then the rest
    first = iot.list_policies(pageSize=2)
    rest = iot.list_policies(pageSize=2, marker=first["nextMarker"])
    assert len(first["policies"]) == 2 and len(rest["policies"]) == 2
    assert {x["policyName"] for x in first["policies"] + rest["policies"]} == set(names)


def test_policy_versions(server, iot):
    iot.create_policy(policyName="v", policyDocument=doc("iot:Connect"))
    v2 = iot.create_policy_version(policyName="v", policyDocument=doc("iot:Publish"))
    assert (v2["policyVersionId"], v2["isDefaultVersion"]) == ("2", False)
    v3 = iot.create_policy_version(policyName="v", policyDocument=doc("iot:Subscribe"), setAsDefault=True)
    assert (v3["policyVersionId"], v3["isDefaultVersion"]) == ("3", True)
    assert json.loads(iot.get_policy(policyName="v")["policyDocument"])["Statement"][0]["Action"] == "iot:Subscribe"
    assert iot.get_policy(policyName="v")["defaultVersionId"] == "3"

    gv = iot.get_policy_version(policyName="v", policyVersionId="2")
    assert gv["policyVersionId"] == "2" and gv["isDefaultVersion"] is False and gv["policyName"] == "v"
    assert json.loads(gv["policyDocument"])["Statement"][0]["Action"] == "iot:Publish"

    iot.set_default_policy_version(policyName="v", policyVersionId="2")
    versions = iot.list_policy_versions(policyName="v")["policyVersions"]
    assert sorted((x["versionId"], x["isDefaultVersion"]) for x in versions) == \
        [("1", False), ("2", True), ("3", False)]

    iot.create_policy_version(policyName="v", policyDocument=doc("iot:Receive"))
    iot.create_policy_version(policyName="v", policyDocument=doc("iot:RetainPublish"))
    assert len(iot.list_policy_versions(policyName="v")["policyVersions"]) == 5
    with nothing_stored(iot):
        with expect_error("VersionsLimitExceededException", 409):
            iot.create_policy_version(policyName="v", policyDocument=doc("iot:Connect"), setAsDefault=True)
        with expect_error("DeleteConflictException", 409):
            iot.delete_policy_version(policyName="v", policyVersionId="2")  # the default
        with expect_error("DeleteConflictException", 409):
            iot.delete_policy(policyName="v")  # non-default versions remain
        with expect_error("ResourceNotFoundException", 404):
            iot.get_policy_version(policyName="v", policyVersionId="9")
    iot.delete_policy_version(policyName="v", policyVersionId="1")
    v6 = iot.create_policy_version(policyName="v", policyDocument=doc("iot:Connect"))
    assert v6["policyVersionId"] == "6"  # ids are never reused
    for vid in ("3", "4", "5", "6"):
        iot.delete_policy_version(policyName="v", policyVersionId=vid)
    iot.delete_policy(policyName="v")
    assert iot.list_policies()["policies"] == []


def oversize_doc():
    resources = [f"arn:aws:iot:us-east-1:123456789012:topic/t{i:04d}" for i in range(60)]
    d = doc("iot:Publish", resources)
    assert len("".join(d.split())) > 2048
    return d


@pytest.mark.parametrize("bad", [
    pytest.param("this is not json", id="not-json"),
    pytest.param('{"Version":"2012-10-17","Statement":[', id="truncated-json"),
    pytest.param(doc("iot:FlyToTheMoon"), id="unknown-action"),
    pytest.param(doc(effect="Perhaps"), id="bad-effect"),
    pytest.param(json.dumps({"Version": "2012-10-17"}), id="no-statement"),
    pytest.param(json.dumps(["not", "an", "object"]), id="not-an-object"),
    pytest.param(oversize_doc(), id="oversize"),
])
def test_malformed_policy(server, iot, bad):
    iot.create_policy(policyName="ok", policyDocument=doc())
    with nothing_stored(iot):
        with expect_error("MalformedPolicyException", 400):
            iot.create_policy(policyName="bad", policyDocument=bad)
        with expect_error("MalformedPolicyException", 400):
            iot.create_policy_version(policyName="ok", policyDocument=bad, setAsDefault=True)


def test_whitespace_does_not_count_towards_size(server, iot):
    resources = [f"arn:aws:iot:us-east-1:123456789012:topic/t{i:02d}" for i in range(30)]
    d = json.dumps({"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": resources}]}, indent=60)
    assert len(d) > 2048 and len("".join(d.split())) < 2048
    assert iot.create_policy(policyName="roomy", policyDocument=d)["policyVersionId"] == "1"


def test_attach_to_certificate_and_thing_group(server, iot):
    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName="cp", policyDocument=doc())
    iot.create_policy(policyName="gp", policyDocument=doc("iot:Publish"))
    parent = iot.create_thing_group(thingGroupName="parent")
    child = iot.create_thing_group(thingGroupName="child", parentGroupName="parent")
    iot.attach_policy(policyName="cp", target=cert["certificateArn"])
    iot.attach_policy(policyName="gp", target=parent["thingGroupArn"])
    iot.attach_policy(policyName="cp", target=cert["certificateArn"])  # idempotent

    arn = lambda n: f"arn:aws:iot:us-east-1:{server.default.id}:policy/{n}"  # noqa: E731
    assert iot.list_attached_policies(target=cert["certificateArn"])["policies"] == \
        [{"policyName": "cp", "policyArn": arn("cp")}]
    assert iot.list_attached_policies(target=parent["thingGroupArn"])["policies"] == \
        [{"policyName": "gp", "policyArn": arn("gp")}]
    assert iot.list_attached_policies(target=child["thingGroupArn"])["policies"] == []
    assert iot.list_attached_policies(target=child["thingGroupArn"], recursive=True)["policies"] == \
        [{"policyName": "gp", "policyArn": arn("gp")}]
    # the CLI spelling of the same
    rc, out, err = server.aws("list-attached-policies", "--target", child["thingGroupArn"], "--recursive")
    assert rc == 0, err
    assert out["policies"] == [{"policyName": "gp", "policyArn": arn("gp")}]

    assert iot.list_targets_for_policy(policyName="cp")["targets"] == [cert["certificateArn"]]
    assert iot.list_targets_for_policy(policyName="gp")["targets"] == [parent["thingGroupArn"]]

    with nothing_stored(iot):
        with expect_error("DeleteConflictException", 409):
            iot.delete_policy(policyName="cp")
        with expect_error("DeleteConflictException", 409):
            iot.delete_policy(policyName="gp")
        with expect_error("ResourceNotFoundException", 404):
            iot.attach_policy(policyName="nope", target=cert["certificateArn"])
        with expect_error("ResourceNotFoundException", 404):
            iot.list_targets_for_policy(policyName="nope")

    iot.detach_policy(policyName="cp", target=cert["certificateArn"])
    iot.detach_policy(policyName="gp", target=parent["thingGroupArn"])
    assert iot.list_targets_for_policy(policyName="cp")["targets"] == []
    iot.delete_policy(policyName="cp")
    iot.delete_policy(policyName="gp")


def test_attach_to_unknown_target(server, iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    acct = server.default.id
    with nothing_stored(iot):
        with expect_error("ResourceNotFoundException", 404):
            iot.attach_policy(policyName="p", target=f"arn:aws:iot:us-east-1:{acct}:cert/{'ab' * 32}")
        with expect_error("ResourceNotFoundException", 404):
            iot.attach_policy(policyName="p", target=f"arn:aws:iot:us-east-1:{acct}:thinggroup/none")


def test_list_targets_paging(server, iot):
    iot.create_policy(policyName="p", policyDocument=doc())
    arns = []
    for _ in range(3):
        arn = iot.create_keys_and_certificate()["certificateArn"]
        iot.attach_policy(policyName="p", target=arn)
        arns.append(arn)
    pages = list(iot.get_paginator("list_targets_for_policy").paginate(policyName="p",
                                                                          PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3
    assert sorted(t for p in pages for t in p["targets"]) == sorted(arns)


def test_deprecated_principal_policy_apis(server, iot):
    cert = iot.create_keys_and_certificate(setAsActive=True)
    arn = cert["certificateArn"]
    iot.create_policy(policyName="legacy", policyDocument=doc())
    iot.attach_principal_policy(policyName="legacy", principal=arn)  # header x-amzn-iot-principal
    pol_arn = f"arn:aws:iot:us-east-1:{server.default.id}:policy/legacy"
    assert iot.list_principal_policies(principal=arn)["policies"] == [{"policyName": "legacy", "policyArn": pol_arn}]
    assert iot.list_policy_principals(policyName="legacy")["principals"] == [arn]  # header x-amzn-iot-policy
    assert iot.list_attached_policies(target=arn)["policies"] == [{"policyName": "legacy", "policyArn": pol_arn}]
    iot.detach_principal_policy(policyName="legacy", principal=arn)
    assert iot.list_principal_policies(principal=arn)["policies"] == []
    assert iot.list_policy_principals(policyName="legacy")["principals"] == []


def test_get_effective_policies(server, iot):
    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName="sensor")
    iot.attach_thing_principal(thingName="sensor", principal=cert["certificateArn"])
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="floor1", parentGroupName="fleet")
    iot.add_thing_to_thing_group(thingGroupName="floor1", thingName="sensor")
    iot.create_policy(policyName="fleetpol", policyDocument=doc("iot:Subscribe"))
    iot.create_policy(policyName="certpol", policyDocument=doc("iot:Connect"))
    iot.create_policy(policyName="unused", policyDocument=doc("iot:Publish"))
    iot.attach_policy(policyName="fleetpol", target=f"arn:aws:iot:us-east-1:{server.default.id}:thinggroup/fleet")
    iot.attach_policy(policyName="certpol", target=cert["certificateArn"])

    eff = iot.get_effective_policies(principal=cert["certificateArn"], thingName="sensor")["effectivePolicies"]
    by_name = {p["policyName"]: p for p in eff}
    assert set(by_name) == {"fleetpol", "certpol"}
    assert json.loads(by_name["fleetpol"]["policyDocument"]) == json.loads(doc("iot:Subscribe"))
    assert by_name["certpol"]["policyArn"] == f"arn:aws:iot:us-east-1:{server.default.id}:policy/certpol"
    # the thing alone: the group's policy
    eff_thing = iot.get_effective_policies(thingName="sensor")["effectivePolicies"]
    assert {p["policyName"] for p in eff_thing} == {"fleetpol"}


def test_duplicate_policy_names_the_resource(server, iot):
    iot.create_policy(policyName="dup", policyDocument=doc())
    with expect_error("ResourceAlreadyExistsException", 409) as e:
        iot.create_policy(policyName="dup", policyDocument=doc())
    # modeled members of ResourceAlreadyExistsException
    assert e["response"].get("resourceId") == "dup"
    assert e["response"].get("resourceArn") == f"arn:aws:iot:us-east-1:{server.default.id}:policy/dup"


def test_invalid_policy_names(server, iot):
    raw = server.iot(validate=False)
    with nothing_stored(iot):
        for name in ("bad name", "x" * 129, "slash/name"):
            with expect_error("InvalidRequestException", 400):
                raw.create_policy(policyName=name, policyDocument=doc())


def test_attachment_limits(server, iot):
    cert = iot.create_keys_and_certificate()["certificateArn"]
    group = iot.create_thing_group(thingGroupName="g")["thingGroupArn"]
    for i in range(11):
        iot.create_policy(policyName=f"p{i}", policyDocument=doc())
    for i in range(10):
        iot.attach_policy(policyName=f"p{i}", target=cert)
    iot.attach_policy(policyName="p0", target=group)
    iot.attach_policy(policyName="p1", target=group)
    with nothing_stored(iot):
        with expect_error("LimitExceededException", 410):
            iot.attach_policy(policyName="p10", target=cert)  # 10 per certificate
        with expect_error("LimitExceededException", 410):
            iot.attach_policy(policyName="p2", target=group)  # 2 per thing group
    # re-attaching an attached policy is not a new attachment
    iot.attach_policy(policyName="p9", target=cert)
