"""Device gateway, done-when #2 (first half): policies with ${iot:Connection.Thing.ThingName}, explicit deny, and
client ids the policy does not allow, seen through mosquitto clients and paho."""

from __future__ import annotations

import pytest

from mqtt_helpers import (NOT_AUTHORIZED, MosquittoSub, Paho, api_device, mosquitto_pub, policy, refused_within,
                          statement, unique)

THING_POLICY = policy(
    statement("Allow", "iot:Connect", "arn:aws:iot:us-east-1:*:client/${iot:Connection.Thing.ThingName}"),
    statement("Allow", ["iot:Publish", "iot:Receive"],
              "arn:aws:iot:us-east-1:*:topic/things/${iot:Connection.Thing.ThingName}/*"),
    statement("Allow", "iot:Subscribe",
              "arn:aws:iot:us-east-1:*:topicfilter/things/${iot:Connection.Thing.ThingName}/*"),
)


@pytest.fixture
def thing_device(server, iot, tmp_path):
    """A certificate with THING_POLICY, attached to thing `own`; thing `other` exists but is not attached to it."""
    dev = api_device(iot, tmp_path, "thingdev", THING_POLICY)
    for name in ("own", "other"):
        iot.create_thing(thingName=name)
    iot.attach_thing_principal(thingName="own", principal=dev.arn)
    return dev


def test_thing_name_policy_own_topic_only(server, iot, tmp_path, thing_device):
    observer = api_device(iot, tmp_path / "obs", "observer")
    with Paho(server, observer, "observer") as obs:
        obs.connect_ok()
        assert obs.subscribe("things/#", qos=1) == [1]

        # MQTT 5, QoS 1: own topic acknowledged; the other thing's topic gets PUBACK 0x87 (not authorized)
        ok = mosquitto_pub(server, thing_device, "own", "things/own/telemetry", "mine", qos=1, version="mqttv5")
        assert ok.returncode == 0 and "received PUBACK (Mid: 1, RC:0)" in ok.stdout, ok.stdout + ok.stderr
        assert obs.wait_message() == ("things/own/telemetry", b"mine", 1, False)

        bad = mosquitto_pub(server, thing_device, "own", "things/other/telemetry", "theirs", qos=1, version="mqttv5")
        assert "RC:135" in bad.stdout, bad.stdout + bad.stderr
        assert "Not authorized" in bad.stderr, bad.stderr

        # MQTT 3.1.1 has no negative PUBACK: the connection is closed
        bad311 = mosquitto_pub(server, thing_device, "own", "things/other/telemetry", "theirs", qos=1)
        assert bad311.returncode != 0, bad311.stdout + bad311.stderr
        assert "connection was lost" in bad311.stderr.lower(), bad311.stderr
        assert "received PUBACK" not in bad311.stdout

        # paho (MQTT 5) sees reason code 135 and stays connected
        with Paho(server, thing_device, "own") as dev:
            dev.connect_ok()
            assert dev.publish("things/other/x", b"no", qos=1) == NOT_AUTHORIZED
            assert dev.publish("things/own/x", b"yes", qos=1) == 0
            assert dev.subscribe("things/own/#", qos=1) == [1]
            assert dev.subscribe("things/other/#", qos=1) == [NOT_AUTHORIZED]
            assert not dev.disconnects

        # barrier: everything above was published before this; the observer got only the allowed messages
        assert obs.wait_message() == ("things/own/x", b"yes", 1, False)
        assert [m[0] for m in obs.received] == ["things/own/telemetry", "things/own/x"]


def test_thing_name_policy_refuses_other_client_ids(server, thing_device):
    # `other` exists but is not attached to this certificate: the variable does not resolve, Connect is denied
    for client_id in ("other", "someone-else"):
        with MosquittoSub(server, thing_device, client_id, ["things/own/x"]) as sub:
            rc = sub.wait_exit()
        assert rc != 0
        assert "Connection Refused: not authorised" in sub.output, sub.output
    with Paho(server, thing_device, "other", v5=True) as p:
        assert p.connect().value == NOT_AUTHORIZED
    # the attached thing's name is accepted
    with MosquittoSub(server, thing_device, "own", ["things/own/x"]) as sub:
        assert sub.wait_subscribed() == [1]


def test_deny_wins_over_allow(server, iot, tmp_path):
    base = unique("d")
    doc = policy(
        statement("Allow", "iot:*", "*"),
        statement("Deny", "iot:Publish", f"arn:aws:iot:us-east-1:*:topic/{base}/secret/*"),
        statement("Deny", "iot:Subscribe", f"arn:aws:iot:us-east-1:*:topicfilter/{base}/secret/*"),
        statement("Deny", "iot:Connect", "arn:aws:iot:us-east-1:*:client/banned-*"),
    )
    dev = api_device(iot, tmp_path, "denydev", doc)
    with Paho(server, dev, "allowed-1") as c:
        c.connect_ok()
        assert c.subscribe(f"{base}/open/#", qos=1) == [1]
        assert c.subscribe(f"{base}/secret/#", qos=1) == [NOT_AUTHORIZED]
        assert c.publish(f"{base}/secret/x", b"s", qos=1) == NOT_AUTHORIZED
        assert c.publish(f"{base}/open/x", b"o", qos=1) == 0
        assert c.wait_message() == (f"{base}/open/x", b"o", 1, False)
    # MQTT 3.1.1: a denied filter gets SUBACK 0x80
    with Paho(server, dev, "allowed-2", v5=False) as c:
        c.connect_ok()
        assert c.subscribe(f"{base}/secret/#", qos=1) == [128]
    with MosquittoSub(server, dev, "banned-1", [f"{base}/open/x"]) as sub:
        assert sub.wait_exit() != 0
    assert "Connection Refused: not authorised" in sub.output, sub.output

    # a second policy attached to the same certificate that denies everything wins over the first's allow
    iot.create_policy(policyName="deny-all", policyDocument=policy(statement("Deny", "iot:*", "*")))
    iot.attach_policy(policyName="deny-all", target=dev.arn)
    # registry changes reach the gateway within one second (issue #3): poll CONNECTs until that deadline
    refused_within(server, dev, "allowed-3")
