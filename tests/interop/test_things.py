"""Things, thing types and thing groups."""

import pytest

from helpers import expect_error, nothing_stored


def test_create_thing_idempotent_and_conflict(server, iot):
    attrs = {"attributes": {"serial": "42", "model": "m1"}}
    r1 = iot.create_thing(thingName="dev:1_a-b", attributePayload=attrs)
    r2 = iot.create_thing(thingName="dev:1_a-b", attributePayload=attrs)
    assert r1["thingId"] == r2["thingId"] and r1["thingArn"] == r2["thingArn"]
    assert r1["thingArn"] == f"arn:aws:iot:us-east-1:{server.default.id}:thing/dev:1_a-b"
    with nothing_stored(iot):
        with expect_error("ResourceAlreadyExistsException", 409):
            iot.create_thing(thingName="dev:1_a-b", attributePayload={"attributes": {"serial": "43", "model": "m1"}})
        with expect_error("ResourceAlreadyExistsException", 409):
            iot.create_thing(thingName="dev:1_a-b")

    d = iot.describe_thing(thingName="dev:1_a-b")
    assert d["thingName"] == "dev:1_a-b" and d["defaultClientId"] == "dev:1_a-b"
    assert d["thingId"] == r1["thingId"] and d["thingArn"] == r1["thingArn"]
    assert d["attributes"] == attrs["attributes"]
    assert d["version"] == 1


def test_attribute_limits_and_validation(server, iot):
    raw = server.iot(validate=False)
    four = {"attributes": {"a": "1", "b": "2", "c": "3", "d": "4"}}
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.create_thing(thingName="many", attributePayload=four)
        with expect_error("InvalidRequestException", 400):
            raw.create_thing(thingName="bad name!", attributePayload={"attributes": {}})
        with expect_error("InvalidRequestException", 400):
            raw.create_thing(thingName="x" * 129)
        with expect_error("InvalidRequestException", 400):
            raw.create_thing(thingName="badattr", attributePayload={"attributes": {"sp ace": "v"}})
        with expect_error("ResourceNotFoundException", 404):
            iot.create_thing(thingName="typed", thingTypeName="NoSuchType")
    # three are fine; with a thing type, more are allowed
    iot.create_thing(thingName="three", attributePayload={"attributes": {"a": "1", "b": "2", "c": "3"}})
    iot.create_thing_type(thingTypeName="Sensor")
    iot.create_thing(thingName="typed", thingTypeName="Sensor", attributePayload=four)
    assert iot.describe_thing(thingName="typed")["attributes"] == four["attributes"]
    with expect_error("InvalidRequestException", 400):
        iot.update_thing(thingName="three", attributePayload={"attributes": {"d": "4"}, "merge": True})
    assert iot.describe_thing(thingName="three")["version"] == 1


def test_update_thing_merge_replace_remove_and_version(server, iot):
    iot.create_thing(thingName="t", attributePayload={"attributes": {"a": "1", "b": "2"}})
    iot.update_thing(thingName="t", attributePayload={"attributes": {"b": "20", "c": "3"}, "merge": True})
    d = iot.describe_thing(thingName="t")
    assert d["attributes"] == {"a": "1", "b": "20", "c": "3"} and d["version"] == 2
    iot.update_thing(thingName="t", attributePayload={"attributes": {"a": ""}, "merge": True})  # remove a
    assert iot.describe_thing(thingName="t")["attributes"] == {"b": "20", "c": "3"}
    iot.update_thing(thingName="t", attributePayload={"attributes": {"z": "26"}})  # replace
    d = iot.describe_thing(thingName="t")
    assert d["attributes"] == {"z": "26"} and d["version"] == 4

    with nothing_stored(iot):
        with expect_error("VersionConflictException", 409):
            iot.update_thing(thingName="t", expectedVersion=3, attributePayload={"attributes": {"y": "1"}})
        with expect_error("VersionConflictException", 409):
            iot.delete_thing(thingName="t", expectedVersion=1)
        with expect_error("ResourceNotFoundException", 404):
            iot.update_thing(thingName="missing", attributePayload={"attributes": {"y": "1"}})
    iot.update_thing(thingName="t", expectedVersion=4, attributePayload={"attributes": {"y": "1"}, "merge": True})
    assert iot.describe_thing(thingName="t")["version"] == 5

    # thing type set and removed
    iot.create_thing_type(thingTypeName="Lamp")
    iot.update_thing(thingName="t", thingTypeName="Lamp")
    assert iot.describe_thing(thingName="t")["thingTypeName"] == "Lamp"
    iot.update_thing(thingName="t", removeThingType=True)
    assert "thingTypeName" not in iot.describe_thing(thingName="t")
    iot.delete_thing(thingName="t", expectedVersion=7)
    with expect_error("ResourceNotFoundException", 404):
        iot.describe_thing(thingName="t")


def test_delete_thing(server, iot):
    cert = iot.create_keys_and_certificate()
    iot.create_thing(thingName="bound")
    iot.attach_thing_principal(thingName="bound", principal=cert["certificateArn"])
    with nothing_stored(iot):
        # AWS: InvalidRequestException "Cannot delete. Thing bound is still attached to one or more principals"
        with expect_error("InvalidRequestException", 400):
            iot.delete_thing(thingName="bound")
    iot.detach_thing_principal(thingName="bound", principal=cert["certificateArn"])
    iot.delete_thing(thingName="bound")
    assert iot.list_things()["things"] == []
    iot.delete_thing(thingName="never-existed")  # succeeds, as documented


def test_list_things_filters_and_paging(server, iot):
    iot.create_thing_type(thingTypeName="Meter")
    iot.create_thing(thingName="m1", thingTypeName="Meter", attributePayload={"attributes": {"site": "tokyo"}})
    iot.create_thing(thingName="m2", thingTypeName="Meter", attributePayload={"attributes": {"site": "osaka"}})
    iot.create_thing(thingName="x1", attributePayload={"attributes": {"site": "tokyo-2"}})
    iot.create_thing(thingName="x2")

    names = lambda r: sorted(t["thingName"] for t in r["things"])  # noqa: E731
    assert names(iot.list_things()) == ["m1", "m2", "x1", "x2"]
    assert names(iot.list_things(thingTypeName="Meter")) == ["m1", "m2"]
    assert names(iot.list_things(attributeName="site", attributeValue="tokyo")) == ["m1"]
    assert names(iot.list_things(attributeName="site", attributeValue="tokyo", usePrefixAttributeValue=True)) == \
        ["m1", "x1"]
    assert names(iot.list_things(attributeName="site", attributeValue="tokyo", thingTypeName="Meter")) == ["m1"]
    m1 = [t for t in iot.list_things()["things"] if t["thingName"] == "m1"][0]
    assert m1["thingTypeName"] == "Meter" and m1["attributes"] == {"site": "tokyo"} and m1["version"] == 1

    pages = list(iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 4 and all(len(p["things"]) == 1 for p in pages)
    assert all(p.get("nextToken") for p in pages[:-1]) and not pages[-1].get("nextToken")
    assert sorted(t["thingName"] for p in pages for t in p["things"]) == ["m1", "m2", "x1", "x2"]

    raw = server.iot(validate=False)
    with expect_error("InvalidRequestException", 400):
        raw.list_things(maxResults=0)
    with expect_error("InvalidRequestException", 400):
        raw.list_things(maxResults=251)
    with expect_error("InvalidRequestException", 400):
        iot.list_things(nextToken="garbage-token")


def test_thing_types(server, iot):
    r = iot.create_thing_type(thingTypeName="Bulb", thingTypeProperties={
        "thingTypeDescription": "a light bulb", "searchableAttributes": ["wattage", "color"]})
    assert r["thingTypeArn"] == f"arn:aws:iot:us-east-1:{server.default.id}:thingtype/Bulb"
    assert r["thingTypeId"]
    d = iot.describe_thing_type(thingTypeName="Bulb")
    assert d["thingTypeName"] == "Bulb" and d["thingTypeId"] == r["thingTypeId"]
    assert d["thingTypeProperties"]["thingTypeDescription"] == "a light bulb"
    assert d["thingTypeProperties"]["searchableAttributes"] == ["wattage", "color"]
    assert d["thingTypeMetadata"]["deprecated"] is False
    assert d["thingTypeMetadata"]["creationDate"]
    iot.create_thing_type(thingTypeName="Plug")
    assert sorted(t["thingTypeName"] for t in iot.list_thing_types()["thingTypes"]) == ["Bulb", "Plug"]
    assert [t["thingTypeName"] for t in iot.list_thing_types(thingTypeName="Plug")["thingTypes"]] == ["Plug"]

    with nothing_stored(iot):
        with expect_error("ResourceAlreadyExistsException", 409):
            iot.create_thing_type(thingTypeName="Bulb", thingTypeProperties={"thingTypeDescription": "other"})
        with expect_error("InvalidRequestException", 400):
            iot.delete_thing_type(thingTypeName="Bulb")  # not deprecated yet
    iot.deprecate_thing_type(thingTypeName="Bulb")
    d = iot.describe_thing_type(thingTypeName="Bulb")
    assert d["thingTypeMetadata"]["deprecated"] is True and d["thingTypeMetadata"]["deprecationDate"]
    # a deprecated type cannot be given to new things
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.create_thing(thingName="new", thingTypeName="Bulb")
    iot.deprecate_thing_type(thingTypeName="Bulb", undoDeprecate=True)
    assert iot.describe_thing_type(thingTypeName="Bulb")["thingTypeMetadata"]["deprecated"] is False
    iot.deprecate_thing_type(thingTypeName="Bulb")
    iot.delete_thing_type(thingTypeName="Bulb")
    with expect_error("ResourceNotFoundException", 404):
        iot.describe_thing_type(thingTypeName="Bulb")


def test_thing_groups(server, iot):
    acct = server.default.id
    root = iot.create_thing_group(thingGroupName="building",
                                  thingGroupProperties={"thingGroupDescription": "HQ",
                                                        "attributePayload": {"attributes": {"city": "Tokyo"}}})
    assert root["thingGroupArn"] == f"arn:aws:iot:us-east-1:{acct}:thinggroup/building"
    iot.create_thing_group(thingGroupName="floor1", parentGroupName="building")
    iot.create_thing_group(thingGroupName="room101", parentGroupName="floor1")

    d = iot.describe_thing_group(thingGroupName="room101")
    assert d["thingGroupName"] == "room101" and d["version"] == 1
    md = d["thingGroupMetadata"]
    assert md["parentGroupName"] == "floor1"
    assert [g["groupName"] for g in md["rootToParentThingGroups"]] == ["building", "floor1"]
    assert md["rootToParentThingGroups"][0]["groupArn"] == root["thingGroupArn"]
    db = iot.describe_thing_group(thingGroupName="building")
    assert db["thingGroupProperties"]["thingGroupDescription"] == "HQ"
    assert db["thingGroupProperties"]["attributePayload"]["attributes"] == {"city": "Tokyo"}

    assert sorted(g["groupName"] for g in iot.list_thing_groups()["thingGroups"]) == \
        ["building", "floor1", "room101"]
    assert [g["groupName"] for g in iot.list_thing_groups(parentGroup="building")["thingGroups"]] == ["floor1"]
    assert [g["groupName"] for g in iot.list_thing_groups(namePrefixFilter="fl")["thingGroups"]] == ["floor1"]

    # update with expectedVersion
    r = iot.update_thing_group(thingGroupName="building", expectedVersion=1,
                               thingGroupProperties={"thingGroupDescription": "Head office"})
    assert r["version"] == 2
    with nothing_stored(iot):
        with expect_error("VersionConflictException", 409):
            iot.update_thing_group(thingGroupName="building", expectedVersion=1,
                                   thingGroupProperties={"thingGroupDescription": "stale"})
        with expect_error("ResourceNotFoundException", 404):
            iot.create_thing_group(thingGroupName="orphan", parentGroupName="nowhere")
        # delete refused while it has children
        with expect_error("InvalidRequestException", 400):
            iot.delete_thing_group(thingGroupName="floor1")
    assert iot.describe_thing_group(thingGroupName="building")["thingGroupProperties"]["thingGroupDescription"] \
        == "Head office"

    # membership
    iot.create_thing(thingName="lamp")
    iot.add_thing_to_thing_group(thingGroupName="room101", thingName="lamp")
    # by ARN works too (and adding again is idempotent)
    iot.add_thing_to_thing_group(thingGroupArn=f"arn:aws:iot:us-east-1:{acct}:thinggroup/room101",
                                 thingArn=f"arn:aws:iot:us-east-1:{acct}:thing/lamp")
    groups = iot.list_thing_groups_for_thing(thingName="lamp")["thingGroups"]
    assert groups == [{"groupName": "room101", "groupArn": f"arn:aws:iot:us-east-1:{acct}:thinggroup/room101"}]
    assert iot.list_things_in_thing_group(thingGroupName="room101")["things"] == ["lamp"]
    assert iot.list_things_in_thing_group(thingGroupName="building")["things"] == []
    with nothing_stored(iot):
        with expect_error("ResourceNotFoundException", 404):
            iot.add_thing_to_thing_group(thingGroupName="room101", thingName="ghost")
        with expect_error("ResourceNotFoundException", 404):
            iot.add_thing_to_thing_group(thingGroupName="ghosts", thingName="lamp")
    iot.remove_thing_from_thing_group(thingGroupName="room101", thingName="lamp")
    assert iot.list_thing_groups_for_thing(thingName="lamp")["thingGroups"] == []
    assert iot.list_things_in_thing_group(thingGroupName="room101")["things"] == []

    iot.delete_thing_group(thingGroupName="room101")
    iot.delete_thing_group(thingGroupName="floor1")
    iot.delete_thing_group(thingGroupName="building")
    iot.delete_thing_group(thingGroupName="building")  # deleting a missing group succeeds
    assert iot.list_thing_groups()["thingGroups"] == []


def test_things_in_group_paging(server, iot):
    iot.create_thing_group(thingGroupName="g")
    for i in range(3):
        iot.create_thing(thingName=f"t{i}")
        iot.add_thing_to_thing_group(thingGroupName="g", thingName=f"t{i}")
    pages = list(iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName="g",
                                                                            PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3
    assert sorted(t for p in pages for t in p["things"]) == ["t0", "t1", "t2"]


def test_deleting_a_thing_removes_its_memberships(server, iot):
    iot.create_thing_group(thingGroupName="g")
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="t")
    iot.delete_thing(thingName="t")
    assert iot.list_things_in_thing_group(thingGroupName="g")["things"] == []
    iot.create_thing(thingName="t")
    assert iot.list_thing_groups_for_thing(thingName="t")["thingGroups"] == []


def test_list_things_in_thing_group_recursive(server, iot):
    iot.create_thing_group(thingGroupName="building")
    iot.create_thing_group(thingGroupName="floor1", parentGroupName="building")
    iot.create_thing_group(thingGroupName="room101", parentGroupName="floor1")
    iot.create_thing(thingName="lamp")
    iot.add_thing_to_thing_group(thingGroupName="room101", thingName="lamp")
    assert iot.list_things_in_thing_group(thingGroupName="building")["things"] == []
    # model: "When true, list things in this thing group and in all child groups as well."
    assert iot.list_things_in_thing_group(thingGroupName="building", recursive=True)["things"] == ["lamp"]


def test_list_thing_groups_recursive(server, iot):
    iot.create_thing_group(thingGroupName="building")
    iot.create_thing_group(thingGroupName="floor1", parentGroupName="building")
    iot.create_thing_group(thingGroupName="room101", parentGroupName="floor1")
    # model: "recursive: If true, return child groups as well."
    got = iot.list_thing_groups(parentGroup="building", recursive=True)["thingGroups"]
    assert sorted(g["groupName"] for g in got) == ["floor1", "room101"]


def test_thing_type_limits(server, iot):
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.create_thing_type(thingTypeName="tt", thingTypeProperties={"searchableAttributes": ["a", "b", "c", "d"]})
    iot.create_thing_type(thingTypeName="tt")
    fifty = {f"a{i}": "v" for i in range(50)}
    iot.create_thing(thingName="big", thingTypeName="tt", attributePayload={"attributes": fifty})
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.create_thing(thingName="bigger", thingTypeName="tt",
                             attributePayload={"attributes": {**fifty, "a50": "v"}})
        with expect_error("InvalidRequestException", 400):
            iot.update_thing(thingName="big", attributePayload={"attributes": {"a50": "v"}, "merge": True})
        # without the type, the 3-attribute limit applies again
        with expect_error("InvalidRequestException", 400):
            iot.update_thing(thingName="big", removeThingType=True)
    iot.deprecate_thing_type(thingTypeName="tt")
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.delete_thing_type(thingTypeName="tt")  # still used by a thing
    iot.delete_thing(thingName="big")
    iot.delete_thing_type(thingTypeName="tt")


def test_one_group_per_hierarchy(server, iot):
    iot.create_thing_group(thingGroupName="root")
    iot.create_thing_group(thingGroupName="leaf", parentGroupName="root")
    iot.create_thing_group(thingGroupName="other")
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="root", thingName="t")
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.add_thing_to_thing_group(thingGroupName="leaf", thingName="t")
    iot.add_thing_to_thing_group(thingGroupName="other", thingName="t")
    assert sorted(g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="t")["thingGroups"]) == \
        ["other", "root"]


def test_invalid_group_and_type_names(server, iot):
    raw = server.iot(validate=False)
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            raw.create_thing_group(thingGroupName="no spaces")
        with expect_error("InvalidRequestException", 400):
            raw.create_thing_type(thingTypeName="x" * 129)
