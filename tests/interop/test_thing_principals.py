"""Thing ↔ principal attachments, including the V2 variants and EXCLUSIVE_THING."""

from helpers import expect_error, nothing_stored


def test_attach_detach_list(server, iot):
    c1 = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    c2 = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.create_thing(thingName="a")
    iot.create_thing(thingName="b")
    iot.attach_thing_principal(thingName="a", principal=c1)
    iot.attach_thing_principal(thingName="a", principal=c2)
    iot.attach_thing_principal(thingName="b", principal=c1)
    iot.attach_thing_principal(thingName="b", principal=c1)  # idempotent

    assert sorted(iot.list_thing_principals(thingName="a")["principals"]) == sorted([c1, c2])
    assert iot.list_thing_principals(thingName="b")["principals"] == [c1]
    assert sorted(iot.list_principal_things(principal=c1)["things"]) == ["a", "b"]
    assert iot.list_principal_things(principal=c2)["things"] == ["a"]

    pages = list(iot.get_paginator("list_principal_things").paginate(principal=c1, PaginationConfig={"PageSize": 1}))
    assert len(pages) == 2 and sorted(t for p in pages for t in p["things"]) == ["a", "b"]
    pages = list(iot.get_paginator("list_thing_principals").paginate(thingName="a", PaginationConfig={"PageSize": 1}))
    assert len(pages) == 2 and sorted(t for p in pages for t in p["principals"]) == sorted([c1, c2])

    # CLI spelling
    rc, out, err = server.aws("list-principal-things", "--principal", c2)
    assert rc == 0, err
    assert out["things"] == ["a"]

    iot.detach_thing_principal(thingName="a", principal=c1)
    assert iot.list_thing_principals(thingName="a")["principals"] == [c2]
    assert iot.list_principal_things(principal=c1)["things"] == ["b"]


def test_attach_errors(server, iot):
    cert = iot.create_keys_and_certificate()["certificateArn"]
    iot.create_thing(thingName="t")
    acct = server.default.id
    with nothing_stored(iot):
        with expect_error("ResourceNotFoundException", 404):
            iot.attach_thing_principal(thingName="ghost", principal=cert)
        with expect_error("ResourceNotFoundException", 404):
            iot.attach_thing_principal(thingName="t", principal=f"arn:aws:iot:us-east-1:{acct}:cert/{'ab' * 32}")
        with expect_error("InvalidRequestException", 400):
            iot.attach_thing_principal(thingName="t", principal="not-an-arn")
        with expect_error("ResourceNotFoundException", 404):
            iot.list_thing_principals(thingName="ghost")


def test_v2_and_exclusive_thing(server, iot):
    c1 = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    c2 = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    for t in ("one", "two"):
        iot.create_thing(thingName=t)
    iot.attach_thing_principal(thingName="one", principal=c1, thingPrincipalType="EXCLUSIVE_THING")
    iot.attach_thing_principal(thingName="one", principal=c2)  # default: non-exclusive
    iot.attach_thing_principal(thingName="two", principal=c2, thingPrincipalType="NON_EXCLUSIVE_THING")

    objs = iot.list_thing_principals_v2(thingName="one")["thingPrincipalObjects"]
    assert sorted((o["principal"], o["thingPrincipalType"]) for o in objs) == \
        sorted([(c1, "EXCLUSIVE_THING"), (c2, "NON_EXCLUSIVE_THING")])
    only_excl = iot.list_thing_principals_v2(thingName="one", thingPrincipalType="EXCLUSIVE_THING")
    assert [o["principal"] for o in only_excl["thingPrincipalObjects"]] == [c1]

    pt = iot.list_principal_things_v2(principal=c1)["principalThingObjects"]
    assert pt == [{"thingName": "one", "thingPrincipalType": "EXCLUSIVE_THING"}]
    pt2 = iot.list_principal_things_v2(principal=c2)["principalThingObjects"]
    assert sorted((o["thingName"], o["thingPrincipalType"]) for o in pt2) == \
        [("one", "NON_EXCLUSIVE_THING"), ("two", "NON_EXCLUSIVE_THING")]
    pt2n = iot.list_principal_things_v2(principal=c2, thingPrincipalType="EXCLUSIVE_THING")
    assert pt2n["principalThingObjects"] == []

    # an exclusive principal cannot be attached to a second thing, in either mode
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.attach_thing_principal(thingName="two", principal=c1)
        with expect_error("InvalidRequestException", 400):
            iot.attach_thing_principal(thingName="two", principal=c1, thingPrincipalType="EXCLUSIVE_THING")
    # and a principal already attached to other things cannot become exclusive to a new one
    iot.create_thing(thingName="three")
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.attach_thing_principal(thingName="three", principal=c2, thingPrincipalType="EXCLUSIVE_THING")
    # once detached, it can go elsewhere
    iot.detach_thing_principal(thingName="one", principal=c1)
    iot.attach_thing_principal(thingName="two", principal=c1, thingPrincipalType="EXCLUSIVE_THING")
    assert iot.list_principal_things_v2(principal=c1)["principalThingObjects"] == \
        [{"thingName": "two", "thingPrincipalType": "EXCLUSIVE_THING"}]
