"""Resources belong to an account *and* a region (the region of the SigV4 credential scope)."""

import re

from helpers import expect_error, register_ca, snapshot

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


def test_us_west_2_sees_nothing_from_us_east_1(server, iot, tmp_path):
    west = server.iot(region="us-west-2")
    empty = snapshot(west)
    iot.create_thing_type(thingTypeName="T")
    iot.create_thing(thingName="east-thing", thingTypeName="T")
    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName="east-policy", policyDocument=POLICY)
    iot.attach_policy(policyName="east-policy", target=cert["certificateArn"])
    iot.create_thing_group(thingGroupName="east-group")
    ca = register_ca(iot, tmp_path / "ca")

    assert snapshot(west) == empty
    assert all(not v for v in empty.values())
    with expect_error("ResourceNotFoundException", 404):
        west.describe_thing(thingName="east-thing")
    with expect_error("ResourceNotFoundException", 404):
        west.describe_certificate(certificateId=cert["certificateId"])
    with expect_error("ResourceNotFoundException", 404):
        west.get_policy(policyName="east-policy")
    with expect_error("ResourceNotFoundException", 404):
        west.describe_ca_certificate(certificateId=ca.id)
    with expect_error("ResourceNotFoundException", 404):
        west.describe_thing_group(thingGroupName="east-group")
    with expect_error("ResourceNotFoundException", 404):
        west.describe_thing_type(thingTypeName="T")

    # same names live independently in us-west-2, with us-west-2 ARNs
    r = west.create_thing(thingName="east-thing", attributePayload={"attributes": {"region": "west"}})
    assert r["thingArn"] == f"arn:aws:iot:us-west-2:{server.default.id}:thing/east-thing"
    assert r["thingId"] != iot.describe_thing(thingName="east-thing")["thingId"]
    wc = west.create_keys_and_certificate()
    assert wc["certificateArn"].startswith(f"arn:aws:iot:us-west-2:{server.default.id}:cert/")
    # a us-east-1 certificate ARN cannot be attached to the us-west-2 thing (as with another account's ARN)
    with expect_error("UnauthorizedException", 401):
        west.attach_thing_principal(thingName="east-thing", principal=cert["certificateArn"])
    assert "attributes" not in iot.describe_thing(thingName="east-thing") or \
        iot.describe_thing(thingName="east-thing")["attributes"] == {}
    assert [c["certificateId"] for c in iot.list_certificates()["certificates"]] == [cert["certificateId"]]


def test_reset_wipes_every_region(server):
    west = server.iot(region="eu-central-1")
    west.create_thing(thingName="x")
    server.reset()
    assert west.list_things()["things"] == []


def test_describe_endpoint_names_the_region(server):
    rc, east, err = server.aws("describe-endpoint", "--endpoint-type", "iot:Data-ATS")
    assert rc == 0, err
    rc, west, err = server.aws("describe-endpoint", "--endpoint-type", "iot:Data-ATS", "--region", "us-west-2")
    assert rc == 0, err
    assert re.fullmatch(r"[a-z0-9]+-ats\.iot\.us-west-2\.localhost", west["endpointAddress"]), west
    assert re.fullmatch(r"[a-z0-9]+-ats\.iot\.us-east-1\.localhost", east["endpointAddress"]), east
    # boto3 in a third region
    ep = server.iot(region="ap-northeast-1").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    assert ".iot.ap-northeast-1." in ep
    # another account has another endpoint
    other = server.iot(account=server.account("second")).describe_endpoint(endpointType="iot:Data-ATS")
    assert other["endpointAddress"] != east["endpointAddress"]
    assert other["endpointAddress"] == server.account("second").endpoint_address


def test_describe_endpoint_unknown_type(server, iot):
    raw = server.iot(validate=False)
    with expect_error("InvalidRequestException", 400):
        raw.describe_endpoint(endpointType="iot:Nonsense")
