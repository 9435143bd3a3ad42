"""Everything survives a restart on the same data dir; nothing is regenerated."""

import json

from helpers import register_ca, snapshot

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


def test_restart_keeps_registry_credentials_and_ca(spawn_server, tmp_path):
    first = spawn_server("persist")
    iot = first.iot()
    iot.create_thing(thingName="kept", attributePayload={"attributes": {"k": "v"}})
    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName="kept-policy", policyDocument=POLICY)
    iot.attach_policy(policyName="kept-policy", target=cert["certificateArn"])
    iot.attach_thing_principal(thingName="kept", principal=cert["certificateArn"])
    iot.create_policy_version(policyName="kept-policy", policyDocument=POLICY.replace("Connect", "Publish"),
                              setAsDefault=True)
    iot.create_thing_group(thingGroupName="kept-group")
    iot.add_thing_to_thing_group(thingGroupName="kept-group", thingName="kept")
    ca = register_ca(iot, tmp_path / "ca", mode="DEFAULT")
    leaving = iot.create_keys_and_certificate(setAsActive=False)["certificateId"]
    code = iot.get_registration_code()["registrationCode"]
    endpoint = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    other = first.create_account("persisted-second")
    first.iot(account=other).create_thing(thingName="theirs")
    iot.transfer_certificate(certificateId=leaving, targetAwsAccount=other.id)
    before = snapshot(iot)

    data = first.data_dir
    files = {p.relative_to(data): p.read_bytes()
             for p in [data / "credentials", *sorted((data / "ca").iterdir())]}
    assert (data / "ca" / "root-ca.pem") in [data / p for p in files]

    rc = first.stop()
    assert rc == 0, f"SIGTERM should shut down cleanly, exit status was {rc}"

    # same data dir and ports, no --dev this time
    second = spawn_server("persist-again", data_dir=data, dev=False, api_port=first.api_port,
                          mqtt_port=first.mqtt_port)
    for rel, content in files.items():
        assert (data / rel).read_bytes() == content, f"{rel} changed on restart"
    assert second.default == first.default  # same account id and access key

    iot2 = second.iot()
    assert snapshot(iot2) == before
    assert iot2.describe_thing(thingName="kept")["attributes"] == {"k": "v"}
    d = iot2.describe_certificate(certificateId=cert["certificateId"])["certificateDescription"]
    assert d["status"] == "ACTIVE" and d["certificatePem"] == cert["certificatePem"]
    assert iot2.get_registration_code()["registrationCode"] == code
    assert iot2.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == endpoint
    assert [t["thingName"] for t in second.iot(account=other).list_things()["things"]] == ["theirs"]
    assert iot2.describe_ca_certificate(certificateId=ca.id)["certificateDescription"]["status"] == "ACTIVE"
    assert iot2.list_things_in_thing_group(thingGroupName="kept-group")["things"] == ["kept"]
    assert iot2.get_policy(policyName="kept-policy")["defaultVersionId"] == "2"
    # the pending transfer can still be accepted
    second.iot(account=other).accept_certificate_transfer(certificateId=leaving)
    assert second.iot(account=other).describe_certificate(certificateId=leaving)["certificateDescription"][
        "previousOwnedBy"] == first.default.id

    # the CLI with the unchanged files works
    rc, out, err = second.aws("list-things")
    assert rc == 0, err
    assert [t["thingName"] for t in out["things"]] == ["kept"]

    # without --dev there is no reset route, and nothing is wiped
    status, body, _ = second.http("POST", "/_onboard/reset")
    assert status != 200, body
    assert [t["thingName"] for t in iot2.list_things()["things"]] == ["kept"]
    listed = json.loads(second.onboard("account", "list", "--data-dir", str(data), "--json").stdout)
    assert {a["accountId"] for a in listed} >= {first.default.id, other.id}
