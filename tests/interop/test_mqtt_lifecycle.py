"""Device gateway, build item 6: lifecycle events on $aws/events/presence/... and $aws/events/subscriptions/...
with AWS's payloads, and clients cannot publish there."""

from __future__ import annotations

import json
import time

from mqtt_helpers import (ALLOW_ALL, NOT_AUTHORIZED, Paho, api_device, mosquitto_pub, policy, raw_connect,
                          statement, unique)

WATCHER_POLICY = policy(
    statement("Allow", "iot:Connect", "*"),
    statement("Allow", "iot:Subscribe", "arn:aws:iot:us-east-1:*:topicfilter/$aws/events/*"),
    statement("Allow", "iot:Receive", "arn:aws:iot:us-east-1:*:topic/$aws/events/*"),
)


def _event(watcher, topic: str) -> dict:
    return json.loads(watcher.wait_message(topic)[1])


def test_presence_connected_and_disconnected_events(server, iot, tmp_path):
    watcher_dev = api_device(iot, tmp_path / "w", "watcher", WATCHER_POLICY)
    dev = api_device(iot, tmp_path / "d", "device", ALLOW_ALL)
    with Paho(server, watcher_dev, "watcher") as w:
        w.connect_ok()
        assert w.subscribe("$aws/events/presence/connected/+") == [1]
        assert w.subscribe("$aws/events/presence/disconnected/+") == [1]
        assert w.subscribe("$aws/events/subscriptions/+/+") == [1]

        t0 = int(time.time() * 1000)
        c = Paho(server, dev, "meter-0042", v5=False)
        c.connect_ok()
        up = _event(w, "$aws/events/presence/connected/meter-0042")
        assert up["clientId"] == "meter-0042"
        assert up["eventType"] == "connected"
        assert up["principalIdentifier"] == dev.cert_id
        assert up["ipAddress"] == "127.0.0.1"
        assert abs(up["timestamp"] - t0) < 120_000
        assert isinstance(up["versionNumber"], int) and up["sessionIdentifier"]

        filt = f"meters/{unique()}/#"
        assert c.subscribe(filt) == [1]
        sub = _event(w, "$aws/events/subscriptions/subscribed/meter-0042")
        assert sub["eventType"] == "subscribed" and sub["topics"] == [filt]
        assert sub["principalIdentifier"] == dev.cert_id

        c.close()  # clean DISCONNECT
        down = _event(w, "$aws/events/presence/disconnected/meter-0042")
        assert down["clientId"] == "meter-0042"
        assert down["eventType"] == "disconnected"
        assert down["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
        assert down["clientInitiatedDisconnect"] is True
        assert down["principalIdentifier"] == dev.cert_id
        assert down["sessionIdentifier"] == up["sessionIdentifier"]
        assert down["versionNumber"] == up["versionNumber"]
        assert "ipAddress" not in down

        # a connection dropped without DISCONNECT is CONNECTION_LOST
        s, code = raw_connect(server, dev, "dropper")
        with s:
            assert code == 0
        assert _event(w, "$aws/events/presence/connected/dropper")["clientId"] == "dropper"
        down = _event(w, "$aws/events/presence/disconnected/dropper")
        assert down["disconnectReason"] == "CONNECTION_LOST"
        assert down["clientInitiatedDisconnect"] is False


def test_clients_cannot_publish_lifecycle_events(server, iot, tmp_path):
    watcher_dev = api_device(iot, tmp_path / "w", "watcher", WATCHER_POLICY)
    dev = api_device(iot, tmp_path / "d", "device", ALLOW_ALL)  # even a policy allowing everything
    fake = json.dumps({"clientId": "ghost", "eventType": "connected"})
    with Paho(server, watcher_dev, "watcher") as w:
        w.connect_ok()
        assert w.subscribe("$aws/events/presence/connected/+") == [1]

        with Paho(server, dev, "forger") as p:
            p.connect_ok()
            rc = p.publish("$aws/events/presence/connected/ghost", fake, qos=1)
            assert rc == NOT_AUTHORIZED, f"a forged lifecycle event was acknowledged with {rc}"
        out = mosquitto_pub(server, dev, "forger-311", "$aws/events/presence/connected/ghost", fake, qos=1)
        # MQTT 3.1.1 has no negative PUBACK: the connection is closed
        assert "received PUBACK" not in out.stdout and out.returncode != 0, out.stdout + out.stderr

        # barrier: the next event the watcher sees is a real one, never the forged ones
        with Paho(server, dev, "real-one") as r:
            r.connect_ok()
            ev = _event(w, "$aws/events/presence/connected/real-one")
        assert ev["principalIdentifier"] == dev.cert_id
        topics = [m[0] for m in w.received]
        assert "$aws/events/presence/connected/ghost" not in topics, w.received
