"""Device gateway, build item 8: GET /metrics on the control-plane port carries the onboard_gateway_ families
(connections open, handshakes and refusals by reason, messages by QoS, policy denials, disconnects by reason)."""

from __future__ import annotations

import ssl
import time

import pytest

from helpers import make_self_signed_leaf
from mqtt_helpers import (NOT_AUTHORIZED, Device, Paho, api_device, metrics, policy, statement,
                          tls_connect, unique)


def _grew(server, before: dict, key: str, by: float = 1, deadline: float = 2.0) -> dict:
    """Poll /metrics (bounded) until `key` grew by at least `by`: counters are bumped by the connection task,
    which may run a moment after the client saw the packet that ended its part."""
    end = time.monotonic() + deadline
    while True:
        now = metrics(server)
        if now.get(key, 0) - before.get(key, 0) >= by:
            return now
        assert time.monotonic() < end, f"{key}: {before.get(key, 0)} -> {now.get(key, 0)}, expected +{by}"
        time.sleep(0.05)


def test_gateway_metrics_families(server, iot, tmp_path):
    before = metrics(server)
    assert "onboard_gateway_connections_open" in before

    dev = api_device(iot, tmp_path, "dev", policy(
        statement("Allow", ["iot:Connect", "iot:Subscribe", "iot:Receive"], "*"),
        statement("Allow", "iot:Publish", "arn:aws:iot:us-east-1:*:topic/ok/*"),
    ))
    stranger_pem = make_self_signed_leaf(tmp_path / "s", "stranger")
    stranger = Device("stranger", "", "", stranger_pem, tmp_path / "s" / "stranger.key")
    topic = f"ok/{unique()}"
    with Paho(server, dev, "metered") as p:
        p.connect_ok()
        assert p.subscribe(topic) == [1]
        assert p.publish(topic, b"q1", qos=1) == 0
        assert p.wait_message(topic)[1] == b"q1"
        assert p.publish(topic, b"q0", qos=0) == 0
        assert p.wait_message(topic)[1] == b"q0"
        assert p.publish("denied/x", b"no", qos=1) == NOT_AUTHORIZED
        during = _grew(server, before, "onboard_gateway_connections_open")
        assert during['onboard_gateway_messages_in_total{qos="1"}'] > before.get(
            'onboard_gateway_messages_in_total{qos="1"}', 0)
        assert during['onboard_gateway_messages_out_total{qos="0"}'] > before.get(
            'onboard_gateway_messages_out_total{qos="0"}', 0)
        assert during['onboard_gateway_policy_denials_total{action="publish"}'] > before.get(
            'onboard_gateway_policy_denials_total{action="publish"}', 0)
    _grew(server, before, 'onboard_gateway_disconnects_total{reason="CLIENT_INITIATED_DISCONNECT"}')

    with Paho(server, stranger, "stranger") as s:
        assert s.connect().value == NOT_AUTHORIZED
    after = _grew(server, before, 'onboard_gateway_refusals_total{reason="unknown_certificate"}')
    assert after['onboard_gateway_handshakes_total{result="ok"}'] - before.get(
        'onboard_gateway_handshakes_total{result="ok"}', 0) >= 2

    # a TLS client without a certificate fails the handshake
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        with tls_connect(server, None) as s:
            s.sendall(b"\x10\x00")
            s.recv(1)
    _grew(server, before, 'onboard_gateway_handshakes_total{result="failed"}')

    status, body, _ = server.http("GET", "/metrics")
    text = body.decode()
    for family in ("connections_open", "handshakes", "refusals", "messages_in", "messages_out", "policy_denials",
                   "disconnects"):
        assert f"# TYPE onboard_gateway_{family} " in text, family
