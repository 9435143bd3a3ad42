"""Device gateway: retained messages (mosquitto_pub -r), delivered to new subscribers of the exact topic, deleted by
an empty payload, guarded by iot:RetainPublish, and kept across a server restart."""

from __future__ import annotations

from mqtt_helpers import (ALLOW_ALL, NOT_AUTHORIZED, MosquittoSub, Paho, api_device, mosquitto_pub, policy,
                          statement, unique)


def _retain(server, dev, topic, message, version="mqttv5"):
    out = mosquitto_pub(server, dev, "retainer", topic, message, qos=1, retain=True, version=version)
    assert out.returncode == 0 and "received PUBACK (Mid: 1, RC:0)" in out.stdout, out.stdout + out.stderr


def test_retained_message_reaches_new_exact_subscriber(server, iot, tmp_path):
    dev = api_device(iot, tmp_path, "dev", ALLOW_ALL)
    base = f"ret/{unique()}"
    topic = f"{base}/state"
    _retain(server, dev, topic, "on")
    for version in ("mqttv311", "mqttv5"):
        with MosquittoSub(server, dev, f"late-{version}", [topic], version=version) as sub:
            sub.wait_subscribed()
            sub.wait_message(topic, "on")
            sub.wait_line(rf"received PUBLISH \(d0, q1, r1, m\d+, '{topic}'")  # flagged as retained

    # a newer retained message replaces it; an empty one deletes it
    _retain(server, dev, topic, "off", version="mqttv311")
    with Paho(server, dev, "late-paho") as p:
        p.connect_ok()
        assert p.subscribe(topic) == [1]
        assert p.wait_message(topic) == (topic, b"off", 1, True)
    out = mosquitto_pub(server, dev, "clearer", topic, "", qos=1, retain=True, version="mqttv5")
    assert out.returncode == 0, out.stderr
    with Paho(server, dev, "after-clear") as p:
        p.connect_ok()
        assert p.subscribe(topic) == [1]
        # barrier: a retained message would be sent on SUBSCRIBE, before anything published after the SUBACK
        assert p.publish(topic, b"live") == 0
        assert p.wait_message(topic) == (topic, b"live", 1, False)
        assert p.received == [(topic, b"live", 1, False)]


def test_retain_publish_needs_iot_retain_publish(server, iot, tmp_path):
    topic = f"ret/{unique()}/x"
    dev = api_device(iot, tmp_path, "dev", policy(statement("Allow", ["iot:Connect", "iot:Publish", "iot:Subscribe",
                                                                       "iot:Receive"], "*")))
    with Paho(server, dev, "no-retain") as p:
        p.connect_ok()
        assert p.publish(topic, b"r", retain=True) == NOT_AUTHORIZED
        assert p.publish(topic, b"plain") == 0
    with Paho(server, dev, "checker") as p:
        p.connect_ok()
        assert p.subscribe(topic) == [1]
        assert p.publish(topic, b"barrier") == 0
        assert p.wait_message(topic) == (topic, b"barrier", 1, False)


def test_retained_message_survives_restart(spawn_server, tmp_path):
    first = spawn_server("retained")
    dev = api_device(first.iot(), tmp_path / "dev", "dev", ALLOW_ALL)
    topic = f"ret/{unique()}/config"
    _retain(first, dev, topic, "kept-across-restart")
    assert first.stop() == 0
    second = spawn_server("retained", data_dir=first.data_dir)
    with MosquittoSub(second, dev, "after-restart", [topic]) as sub:
        sub.wait_subscribed()
        sub.wait_message(topic, "kept-across-restart")
        sub.wait_line(rf"received PUBLISH \(d0, q1, r1, m\d+, '{topic}'")
