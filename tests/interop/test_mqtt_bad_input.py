"""Device gateway, "Bad input" at the socket level (Python sockets + ssl with a registered client certificate):
each gets the protocol's refusal or a disconnect, and never affects a concurrently connected client."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from mqtt_helpers import (ALLOW_ALL, WAIT, Paho, _str, api_device, connect_packet, packet, publish_packet,
                          metrics, raw_connect, read_packet, tls_connect, unique, wait_closed)


@pytest.fixture
def dev(iot, tmp_path):
    return api_device(iot, tmp_path, "dev", ALLOW_ALL)


@pytest.fixture
def bystander(server, dev):
    """A paho client connected throughout; `check()` proves it still works and was never disconnected."""
    topic = f"bystander/{unique()}"
    p = Paho(server, dev, "bystander")
    p.connect_ok()
    assert p.subscribe(topic) == [1]
    n = [0]

    def check():
        n[0] += 1
        assert p.publish(topic, f"alive-{n[0]}".encode()) == 0
        assert p.wait_message(topic)[1] == f"alive-{n[0]}".encode()
        assert not p.disconnects, p.disconnects

    check()
    yield check
    p.close()


def _connected(server, dev, client_id: str, v5: bool = False):
    s, code = raw_connect(server, dev, client_id, v5=v5)
    assert code == 0, f"CONNACK {code}"
    return s


def test_garbage_after_tls_handshake(server, dev, bystander):
    # garbage instead of a CONNECT (complete packets of reserved or wrong types)
    for garbage in (b"\x00\x05hello" + bytes(range(256)), b"\xff" * 16, b"\xc0\x00" + b"\x00" * 32):
        with tls_connect(server, dev) as s:
            s.sendall(garbage)
            assert wait_closed(s) == []
    # garbage after an accepted CONNECT (packet type 0 is reserved)
    with _connected(server, dev, "garbler") as s:
        s.sendall(b"\x00\x05hello" + bytes(range(256)))
        sent = wait_closed(s)
        assert all(t == 14 for t, _ in sent), sent  # at most a DISCONNECT
    bystander()


def test_tcp_client_that_never_starts_tls_is_closed_without_blocking_others(server, dev, bystander):
    deadline = time.monotonic() + 15
    idle = socket.create_connection(("127.0.0.1", server.mqtt_port), timeout=15)
    # and one that starts a ClientHello but never finishes it
    stalled = socket.create_connection(("127.0.0.1", server.mqtt_port), timeout=15)
    stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    # and one that completes TLS but sends an HTTP request (read as a packet whose body never arrives)
    http = tls_connect(server, dev)
    http.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    try:
        # others connect and work while both are pending
        bystander()
        with Paho(server, dev, "newcomer") as p:
            p.connect_ok()
        for s in (idle, stalled):
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                assert s.recv(1024) == b""
            except ConnectionResetError:
                pass
            except socket.timeout:
                pytest.fail("a TCP client that never completed TLS was not closed within 15 s")
        assert wait_closed(http, max(0.1, deadline - time.monotonic())) == []
        assert time.monotonic() <= deadline
        bystander()
    finally:
        idle.close()
        stalled.close()
        http.close()


@pytest.mark.parametrize("topic", ["a/+/b", "a/#", "+"])
@pytest.mark.parametrize("v5", [False, True], ids=["mqttv311", "mqttv5"])
def test_publish_with_wildcard_topic_is_disconnected(server, dev, bystander, topic, v5):
    with _connected(server, dev, "wild", v5=v5) as s:
        s.sendall(publish_packet(topic, b"x", qos=1, v5=v5))
        sent = wait_closed(s)
    if v5:
        # MQTT 5: an optional DISCONNECT with an error reason (0x90 topic name invalid) before the close
        assert all(t == 14 and b and b[0] >= 0x80 for t, b in sent), sent
    else:
        assert sent == [], sent  # MQTT 3.1.1: no PUBACK, just the close
    bystander()


BAD_PACKETS = {
    "second CONNECT": connect_packet("again"),
    "QoS 2 PUBLISH": publish_packet("q2/topic", b"x", qos=2),
    "invalid UTF-8 topic": publish_packet(b"bad/\xff\xfe", b"x", qos=1),
    "payload over 128 KB": publish_packet("big/topic", b"x" * (128 * 1024 + 1), qos=1),
    "truncated length": b"\x30\xff\xff\xff\xff\x7f",
    "SUBSCRIBE with no filters": packet(0x82, b"\x00\x01"),
}


@pytest.mark.parametrize("case", list(BAD_PACKETS))
def test_protocol_violation_closes_only_that_connection(server, dev, bystander, case):
    with _connected(server, dev, "violator") as s:
        try:
            s.sendall(BAD_PACKETS[case])
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still writing: fine
        sent = wait_closed(s)
        assert all(t == 14 for t, _ in sent), f"{case}: expected only the close, got {sent}"
    bystander()


def _logged(server, peer_port: int, deadline: float = 2.0) -> list[str]:
    """Server log lines naming this client's address (bounded poll: the log is written asynchronously)."""
    end = time.monotonic() + deadline
    while True:
        lines = [l for l in server.stderr_path.read_text(errors="replace").splitlines()
                 if f"127.0.0.1:{peer_port}" in l]
        if lines or time.monotonic() > end:
            return lines
        time.sleep(0.05)


def test_malformed_packet_after_connect_is_logged_with_reason(server, dev):
    with _connected(server, dev, "logged") as s:
        port = s.getsockname()[1]
        s.sendall(b"\x00\x00")
        wait_closed(s)
    lines = _logged(server, port)
    assert any("CLIENT_ERROR" in l and "malformed" in l for l in lines), lines


def test_garbage_before_connect_is_logged_with_reason(server, dev):
    with tls_connect(server, dev) as s:
        port = s.getsockname()[1]
        s.sendall(b"\x00\x05hello")
        assert wait_closed(s) == []
    assert _logged(server, port), "nothing in the log about this connection"


def test_client_that_stops_reading_is_disconnected_without_affecting_others(server, dev, bystander):
    # A subscriber that keeps pinging but never reads, flooded with messages: once the gateway holds more than a
    # little for it, it stops reading from it (and drops its QoS 0 messages), so keep-alive ends the connection
    # with the reason logged: 1.5 x 30 s, AWS's shortest keep-alive. The publisher and everyone else carry on.
    topic = f"flood/{unique()}"
    client_id = f"sleeper-{unique()}"
    sleeper = tls_connect(server, dev)
    sleeper.sendall(connect_packet(client_id, keepalive=30))
    assert read_packet(sleeper) == (2, b"\x00\x00")
    sleeper.sendall(packet(0x82, struct.pack("!H", 1) + _str(topic) + b"\x00"))
    assert read_packet(sleeper) == (9, struct.pack("!H", 1) + b"\x00")
    flooder = Paho(server, dev, f"flooder-{unique()}", v5=False).connect_ok()
    payload = b"x" * 10_000

    def logged(text: str) -> bool:
        return any(client_id in l and text in l
                   for l in server.stderr_path.read_text(errors="replace").splitlines())

    try:
        deadline = time.monotonic() + 90
        full = 'onboard_gateway_messages_dropped_total{reason="client_queue_full"}'
        while not logged("MQTT_KEEP_ALIVE_TIMEOUT"):
            assert time.monotonic() < deadline, "a client that stopped reading was not disconnected in 90 s"
            sleeper.sendall(b"\xc0\x00")  # PINGREQ: alive, just not reading
            if metrics(server).get(full, 0) == 0:  # flood until its delivery queue overflows, then just wait
                infos = [flooder.c.publish(topic, payload, qos=1) for _ in range(100)]
                infos[-1].wait_for_publish(WAIT)
            else:
                time.sleep(0.5)
        assert logged("did not read what it was sent")
        assert not flooder.disconnects, flooder.disconnects
        bystander()
        # Behind the messages still in flight comes the end of the stream.
        sent = wait_closed(sleeper, 30)
        assert sent and all(t in (3, 13) for t, _ in sent), [t for t, _ in sent][:10]
    finally:
        flooder.close()
        sleeper.close()
