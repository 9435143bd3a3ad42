"""Device gateway, done-when #1: with a certificate from `aws iot create-keys-and-certificate` and a policy attached
through the AWS CLI, mosquitto_pub/mosquitto_sub and paho-mqtt exchange messages at QoS 0 and 1 over MQTT 3.1.1
and 5, and a client built on awsiotsdk's mqtt5_client_builder connects through the ALPN (x-amzn-mqtt-ca) listener.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import Future

import awscrt.io
import awscrt.mqtt5 as m5
import pytest
from awsiot import mqtt5_client_builder

from mqtt_helpers import (MosquittoSub, Paho, api_device, cli_device, mosquitto_pub, note_stale_refusal, tls_connect,
                          unique)

ALPN = "x-amzn-mqtt-ca"


@pytest.fixture
def cli_dev(server, tmp_path):
    """Certificate, key and policy made with the AWS CLI, as the issue's done-when says."""
    return cli_device(server, tmp_path, "dev1")


@pytest.fixture
def api_dev(iot, tmp_path):
    return api_device(iot, tmp_path, "dev2")


def test_mosquitto_clients_qos0_and_qos1_over_311_and_5(server, cli_dev):
    for version in ("mqttv311", "mqttv5"):
        topic = f"interop/{unique()}/data"
        with MosquittoSub(server, cli_dev, f"sub-{version}", [topic], qos=1, version=version) as sub:
            assert sub.wait_subscribed() == [1]
            for qos in (0, 1):
                payload = f"hello-{version}-q{qos}"
                p = mosquitto_pub(server, cli_dev, f"pub-{version}", topic, payload, qos=qos, version=version)
                assert p.returncode == 0, p.stderr + p.stdout
                if qos == 1:
                    assert "received PUBACK" in p.stdout and "RC:135" not in p.stdout, p.stdout
                sub.wait_message(topic, payload)
                # delivered at the publisher's QoS (the subscription grants 1)
                sub.wait_line(rf"received PUBLISH \(d0, q{qos}, r0, m\d+, '{topic}'")


def test_paho_qos0_and_qos1_over_311_and_5(server, cli_dev):
    for v5 in (False, True):
        topic = f"interop/{unique()}/paho"
        with Paho(server, cli_dev, "paho-sub", v5=v5) as sub, Paho(server, cli_dev, "paho-pub", v5=v5) as pub:
            sub.connect_ok()
            pub.connect_ok()
            assert sub.subscribe(topic, qos=1) == [1]
            for qos in (0, 1):
                payload = f"paho-q{qos}".encode()
                assert pub.publish(topic, payload, qos=qos) == 0
                assert sub.wait_message(topic) == (topic, payload, qos, False)
            # single-level wildcard filter
            base = f"interop/{unique()}"
            assert sub.subscribe(f"{base}/+/w", qos=1) == [1]
            assert pub.publish(f"{base}/x/w", b"wild", qos=1) == 0
            assert sub.wait_message(f"{base}/x/w") == (f"{base}/x/w", b"wild", 1, False)
            assert not sub.disconnects and not pub.disconnects


def test_alpn_listener_selects_x_amzn_mqtt_ca(server, api_dev):
    """The ALPN port picks x-amzn-mqtt-ca when it is offered (Python ssl sees the negotiated protocol)."""
    with tls_connect(server, api_dev, port=server.alpn_port, alpn=[ALPN]) as s:
        assert s.selected_alpn_protocol() == ALPN
    # a client offering nothing, or only something else, is still served (AWS SDKs on 8883, paho by default)
    with tls_connect(server, api_dev, port=server.alpn_port) as s:
        assert s.selected_alpn_protocol() is None
    with tls_connect(server, api_dev, port=server.mqtt_port, alpn=["mqtt", ALPN]) as s:
        assert s.selected_alpn_protocol() == ALPN  # the Node SDK offers it on 8883 too


def test_mosquitto_and_paho_through_alpn_listener(server, api_dev):
    """AWS's port-443 style (interop.md §4): mosquitto with --tls-alpn x-amzn-mqtt-ca, paho with alpn_protocols."""
    topic = f"interop/{unique()}/alpn"
    alpn = ("--tls-alpn", ALPN)
    with MosquittoSub(server, api_dev, "alpn-sub", [topic], version="mqttv5", port=server.alpn_port,
                      extra=alpn) as sub, \
            Paho(server, api_dev, "alpn-paho", port=server.alpn_port, alpn=[ALPN]) as p:
        assert sub.wait_subscribed() == [1]
        p.connect_ok()
        assert p.c.socket().selected_alpn_protocol() == ALPN
        assert p.publish(topic, b"paho-via-alpn") == 0
        sub.wait_message(topic, "paho-via-alpn")
        out = mosquitto_pub(server, api_dev, "alpn-pub", topic, "mosq-via-alpn", qos=1, port=server.alpn_port,
                            extra=alpn)
        assert out.returncode == 0 and "received PUBACK (Mid: 1, RC:0)" in out.stdout, out.stdout + out.stderr
        sub.wait_message(topic, "mosq-via-alpn")


class HelloRecorder:
    """A loopback TCP relay in front of the ALPN listener that records what each client sent first (its
    ClientHello, in clear), so a test can prove which ALPN the client offered."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(30)
        self.port = self.lsock.getsockname()[1]
        self.hellos: list[bytes] = []
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target), timeout=30)
            self._socks += [c, u]
            idx = len(self.hellos)
            self.hellos.append(b"")
            threading.Thread(target=self._pump, args=(c, u, idx), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, None), daemon=True).start()

    def _pump(self, src, dst, idx):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                if idx is not None and len(self.hellos[idx]) < 65536:
                    self.hellos[idx] += b
                dst.sendall(b)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.lsock.close()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the pump threads; the server sees the close now
            except OSError:
                pass
            s.close()


def _crt_roundtrip(cert, key, ca, port: int, client_id: str, topic: str):
    """Connect with awsiotsdk's mqtt5 builder, subscribe, publish, receive own message, stop."""
    connected, got, stopped = Future(), Future(), Future()
    failures = []

    def on_failure(d):
        # awscrt reconnects by itself after a failed attempt (see note_stale_refusal); success must come in time
        failures.append(d.exception)

    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost", port=port, cert_filepath=str(cert), pri_key_filepath=str(key), ca_filepath=str(ca),
        client_id=client_id,
        on_publish_received=lambda d: got.done() or got.set_result(
            (d.publish_packet.topic, bytes(d.publish_packet.payload))),
        on_lifecycle_connection_success=lambda d: connected.done() or connected.set_result(d.connack_packet),
        on_lifecycle_connection_failure=on_failure,
        on_lifecycle_stopped=lambda d: stopped.set_result(True))
    client.start()
    try:
        try:
            connack = connected.result(15)
        except TimeoutError:
            raise AssertionError(f"awscrt did not connect within 15 s: {failures}") from None
        if failures:
            note_stale_refusal(f"awscrt {client_id}")
        assert connack.reason_code == m5.ConnectReasonCode.SUCCESS
        suback = client.subscribe(m5.SubscribePacket(
            subscriptions=[m5.Subscription(topic, m5.QoS.AT_LEAST_ONCE)])).result(10)
        assert suback.reason_codes == [m5.SubackReasonCode.GRANTED_QOS_1]
        done = client.publish(
            m5.PublishPacket(topic=topic, payload=b"from-awscrt", qos=m5.QoS.AT_LEAST_ONCE)).result(10)
        assert done.puback.reason_code == m5.PubackReasonCode.SUCCESS
        assert got.result(10) == (topic, b"from-awscrt")
    finally:
        client.stop(m5.DisconnectPacket())
        stopped.result(10)


def test_awsiotsdk_mqtt5_builder_through_alpn_listener(server, cli_dev, monkeypatch):
    """mqtt5_client_builder sets ALPN x-amzn-mqtt-ca only when port == 443 (interop.md §3; _builder checks
    `client_options.port == 443`). On the test's ALPN port we ask for it the way the builder itself does: the TLS
    options the builder creates get alpn_list = ['x-amzn-mqtt-ca'] (the builder leaves a preset list alone on other
    ports). A relay in front of the ALPN listener proves the ClientHello carried the protocol name."""
    relay = HelloRecorder(server.alpn_port)
    try:
        # control: the builder as is, on a port other than 443, offers no ALPN
        _crt_roundtrip(cli_dev.cert, cli_dev.key, server.root_ca, relay.port, "crt-plain", f"crt/{unique()}")
        plain = len(relay.hellos)
        assert plain and all(ALPN.encode() not in h for h in relay.hellos)

        original = awscrt.io.TlsContextOptions.create_client_with_mtls_from_path

        def with_alpn(cert_path, key_path):
            opts = original(cert_path, key_path)
            opts.alpn_list = [ALPN]
            return opts

        monkeypatch.setattr(awscrt.io.TlsContextOptions, "create_client_with_mtls_from_path", staticmethod(with_alpn))
        _crt_roundtrip(cli_dev.cert, cli_dev.key, server.root_ca, relay.port, "crt-alpn", f"crt/{unique()}")
        assert len(relay.hellos) > plain
        for hello in relay.hellos[plain:]:
            assert hello[0] == 0x16, "first bytes are not a TLS handshake record"
            assert ALPN.encode() in hello, "the awscrt ClientHello did not offer x-amzn-mqtt-ca"
            assert b"localhost" in hello  # SNI = endpoint
    finally:
        relay.close()
