"""MQTT side of the interop suite: devices (certificate + key files + policy), the real clients (mosquitto_pub/sub,
paho-mqtt 2.x, awscrt through awsiotsdk's mqtt5_client_builder) and raw TLS sockets with hand-made MQTT packets.

Synchronisation is always on an observable event (a debug line of mosquitto_sub, a paho callback, a packet) with a
deadline; nothing sleeps to "let the server catch up".
"""

from __future__ import annotations

import json
import queue
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid

import pytest
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties

from helpers import run

WAIT = 10.0  # default deadline for one awaited event (a CONNACK, a message, ...)
NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87


def note_stale_refusal(what: str):
    """A CONNECT refused right after a registry change but accepted on an immediate retry. That was a gateway race
    (a refusal re-checked against a cache no newer than the one that refused); the connect helpers still retry
    once so the symptom is recognised, and fail the test so a regression cannot pass unnoticed."""
    pytest.fail(f"{what}: refused right after a registry change, accepted on an immediate retry")


def unique(prefix: str = "t") -> str:
    """A fresh topic segment: retained messages and sessions outlive the per-test registry reset."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------------------------------------------------
# policies and devices


def statement(effect: str, action, resource) -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource}


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ALLOW_ALL = policy(statement("Allow", "iot:*", "*"))


@dataclass
class Device:
    name: str
    cert_id: str
    arn: str
    cert: Path
    key: Path


def cli_device(server, dir: Path, name: str, policy_doc: str | None = ALLOW_ALL, account=None) -> Device:
    """`aws iot create-keys-and-certificate --set-as-active` (files written by the CLI) and, if given, a policy
    created and attached with the CLI: exactly what a user would type."""
    dir.mkdir(parents=True, exist_ok=True)
    cert, key = dir / f"{name}.pem", dir / f"{name}.key"
    rc, out, err = server.aws("create-keys-and-certificate", "--set-as-active", "--certificate-pem-outfile",
                              str(cert), "--private-key-outfile", str(key), account=account)
    assert rc == 0, err
    dev = Device(name, out["certificateId"], out["certificateArn"], cert, key)
    if policy_doc is not None:
        rc, _, err = server.aws("create-policy", "--policy-name", f"{name}-policy", "--policy-document", policy_doc,
                                account=account)
        assert rc == 0, err
        rc, _, err = server.aws("attach-policy", "--policy-name", f"{name}-policy", "--target", dev.arn,
                                account=account)
        assert rc == 0, err
    return dev


def api_device(iot, dir: Path, name: str, policy_doc: str | None = ALLOW_ALL, policy_name: str | None = None) -> Device:
    """The same through boto3 (faster than the CLI; for tests where the CLI is not the point)."""
    dir.mkdir(parents=True, exist_ok=True)
    r = iot.create_keys_and_certificate(setAsActive=True)
    cert, key = dir / f"{name}.pem", dir / f"{name}.key"
    cert.write_text(r["certificatePem"])
    key.write_text(r["keyPair"]["PrivateKey"])
    key.chmod(0o600)
    dev = Device(name, r["certificateId"], r["certificateArn"], cert, key)
    if policy_doc is not None:
        attach_new_policy(iot, dev, policy_doc, policy_name or f"{name}-policy")
    return dev


def attach_new_policy(iot, dev: Device, doc: str, name: str):
    iot.create_policy(policyName=name, policyDocument=doc)
    iot.attach_policy(policyName=name, target=dev.arn)


# ---------------------------------------------------------------------------------------------------------------------
# mosquitto clients


def mosq_args(server, dev: Device, client_id: str, version: str = "mqttv311", port: int | None = None) -> list:
    return ["-h", "localhost", "-p", str(port or server.mqtt_port), "--cafile", str(server.root_ca),
            "--cert", str(dev.cert), "--key", str(dev.key), "-i", client_id, "-V", version]


def mosquitto_pub(server, dev: Device, client_id: str, topic: str, message: str, *, qos: int = 0,
                  version: str = "mqttv311", retain: bool = False, port: int | None = None, timeout: float = 20,
                  extra: tuple = ()):
    cmd = ["mosquitto_pub", *mosq_args(server, dev, client_id, version, port), "-t", topic, "-m", message,
           "-q", str(qos), "-d", *extra]
    if retain:
        cmd.append("-r")
    out = run(cmd, check=False, timeout=timeout)
    if out.returncode != 0 and "received CONNACK (0)" not in out.stdout and "ot authori" in out.stderr:
        again = run(cmd, check=False, timeout=timeout)
        if "received CONNACK (0)" in again.stdout:
            note_stale_refusal(f"mosquitto_pub -i {client_id}")
            return again
    return out


class MosquittoSub:
    """`mosquitto_sub -d` in the background, line-buffered (stdbuf), its output read by a thread.

    Messages are printed as `MSG <topic> <payload>` (-F); debug lines (`Client x received SUBACK`, ...) say when
    the subscription is in place."""

    def __init__(self, server, dev: Device, client_id: str, topics: list[str], *, qos: int = 1,
                 version: str = "mqttv311", port: int | None = None, extra: tuple = ()):
        cmd = ["stdbuf", "-oL", "-eL", "mosquitto_sub", *mosq_args(server, dev, client_id, version, port), "-q",
               str(qos), "-d", "-F", "MSG %t %p", *extra]
        for t in topics:
            cmd += ["-t", t]
        self.cmd = cmd
        self.client_id = client_id
        self.lines: list[str] = []
        self._cv = threading.Condition()
        self._start()

    def _start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc):
        for line in proc.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self.lines.append("<EOF>")
            self._cv.notify_all()

    def wait_line(self, pattern: str, timeout: float = WAIT, start: int = 0) -> re.Match:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] == "<EOF>"):
                    raise AssertionError(f"mosquitto_sub: no line matching {pattern!r} within {timeout}s:\n"
                                         + "\n".join(self.lines))
                self._cv.wait(left)

    def wait_subscribed(self, n: int = 1, timeout: float = WAIT) -> list[int]:
        """Wait for the SUBACK; return the granted QoS / reason codes."""
        try:
            m = self.wait_line(r"^Subscribed \(mid: \d+\): ([\d, ]+)$", timeout)
        except AssertionError:
            if "received CONNACK (0)" in self.output or "ot authori" not in self.output:  # 3.1.1 / 5 wording
                raise
            self.proc.wait(timeout=WAIT)
            self._reader.join(WAIT)
            with self._cv:
                self.lines.clear()
            self._start()  # see note_stale_refusal
            m = self.wait_line(r"^Subscribed \(mid: \d+\): ([\d, ]+)$", timeout)
            note_stale_refusal(f"mosquitto_sub -i {self.client_id}")
        codes = [int(x) for x in m.group(1).split(",")]
        assert len(codes) == n, codes
        return codes

    def messages(self) -> list[tuple[str, str]]:
        with self._cv:
            return [tuple(l[4:].split(" ", 1)) for l in self.lines if l.startswith("MSG ")]

    def wait_message(self, topic: str, payload: str | None = None, timeout: float = WAIT) -> str:
        pat = rf"^MSG {re.escape(topic)} " + (re.escape(payload) + "$" if payload is not None else "")
        return self.wait_line(pat, timeout).string

    def wait_exit(self, timeout: float = WAIT) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        return rc

    @property
    def output(self) -> str:
        with self._cv:
            return "\n".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------------------------------
# paho-mqtt 2.x


class Paho:
    """A paho client on its own network thread, without automatic reconnection, recording every callback."""

    def __init__(self, server, dev: Device, client_id: str, *, v5: bool = True, port: int | None = None,
                 clean: bool = True, alpn: list[str] | None = None, host: str = "localhost"):
        self.server, self.host, self.port = server, host, port or server.mqtt_port
        self.client_id = client_id
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                             clean_session=None if v5 else clean, reconnect_on_failure=False)
        self.c.tls_set(ca_certs=str(server.root_ca), certfile=str(dev.cert), keyfile=str(dev.key),
                       alpn_protocols=alpn)
        self.v5 = v5
        self.connack: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.received: list = []
        self.disconnects: list[tuple[float, int, str]] = []  # (monotonic time, reason code value, reason name)
        self.disconnected = threading.Event()
        self.connects = 0
        self._acks: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_ack
        self.c.on_unsubscribe = self._on_ack
        self.c.on_publish = self._on_publish

    # callbacks (network thread)
    def _on_connect(self, client, userdata, flags, rc, props):
        if rc.value == 0:
            self.connects += 1
        self.connack.put(rc)

    def _on_disconnect(self, client, userdata, flags, rc, props):
        self.disconnects.append((time.monotonic(), rc.value, str(rc)))
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        m = (msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain))
        self.received.append(m)
        self.messages.put(m)

    def _ackq(self, mid) -> queue.Queue:
        with self._lock:
            return self._acks.setdefault(mid, queue.Queue())

    def _on_ack(self, client, userdata, mid, rcs, props):
        self._ackq(mid).put(rcs)

    def _on_publish(self, client, userdata, mid, rc, props):
        self._ackq(mid).put(rc)

    # operations (test thread)
    def connect(self, timeout: float = WAIT):
        """Connect and return the CONNACK reason code (a paho ReasonCode; .value 0 is success)."""
        props = None
        if self.v5:
            props = Properties(paho.PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0
        self.c.connect(self.host, self.port, keepalive=60, properties=props)
        self.c.loop_start()
        try:
            return self.connack.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no CONNACK within {timeout}s") from None

    def connect_ok(self, timeout: float = WAIT):
        rc = self.connect(timeout)
        if rc.value != 0:  # see note_stale_refusal: one immediate retry
            self.c.loop_stop()
            self.disconnects.clear()
            self.disconnected.clear()
            self.c.reconnect()
            self.c.loop_start()
            try:
                rc = self.connack.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no CONNACK within {timeout}s") from None
            if rc.value == 0:
                note_stale_refusal(f"paho {self.client_id}")
        assert rc.value == 0, f"connection refused: {rc}"
        return self

    def subscribe(self, topic: str, qos: int = 1, timeout: float = WAIT) -> list[int]:
        res, mid = self.c.subscribe(topic, qos)
        assert res == paho.MQTT_ERR_SUCCESS, res
        try:
            rcs = self._ackq(mid).get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no SUBACK for {topic} within {timeout}s") from None
        return [r.value for r in rcs]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                timeout: float = WAIT) -> int:
        """Publish; for QoS 1 wait for the PUBACK and return its reason code (0 for QoS 0 once written)."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == paho.MQTT_ERR_SUCCESS, info.rc
        try:
            rc = self._ackq(info.mid).get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no PUBACK for {topic} within {timeout}s") from None
        return rc.value

    def wait_message(self, topic: str | None = None, timeout: float = WAIT):
        """The next message (on `topic` if given; others are skipped but stay in .received)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no message on {topic} within {timeout}s; got {self.received}")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if topic is None or m[0] == topic:
                return m

    def wait_disconnect(self, timeout: float = WAIT) -> tuple[float, int, str]:
        assert self.disconnected.wait(timeout), f"still connected after {timeout}s"
        return self.disconnects[0]

    def close(self):
        try:
            if self.c.is_connected():
                self.c.disconnect()
        finally:
            self.c.loop_stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------------------------------
# raw TLS + hand-made MQTT packets (for bad input)


def tls_context(server, dev: Device | None, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.root_ca))
    if dev is not None:
        ctx.load_cert_chain(str(dev.cert), str(dev.key))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(server, dev: Device | None, port: int | None = None, sni: str = "localhost",
                alpn: list[str] | None = None, timeout: float = WAIT) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port or server.mqtt_port), timeout=timeout)
    try:
        return tls_context(server, dev, alpn).wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def connect_packet(client_id: str, v5: bool = False, keepalive: int = 60) -> bytes:
    body = _str("MQTT") + bytes([5 if v5 else 4, 0x02]) + struct.pack("!H", keepalive)
    if v5:
        body += b"\x00"  # no properties
    return packet(0x10, body + _str(client_id))


def publish_packet(topic: str | bytes, payload: bytes, qos: int = 0, v5: bool = False, mid: int = 1) -> bytes:
    body = _str(topic) + (struct.pack("!H", mid) if qos else b"") + (b"\x00" if v5 else b"") + payload
    return packet(0x30 | (qos << 1), body)


def raw_connect(server, dev: Device, client_id: str, v5: bool = False, sni: str = "localhost",
                expect_ok: bool = True) -> tuple[ssl.SSLSocket, int]:
    """TLS + a hand-made CONNECT; returns the socket and the CONNACK return/reason code. With expect_ok, a refusal
    is retried once at once (see note_stale_refusal)."""
    for attempt in (1, 2):
        s = tls_connect(server, dev, sni=sni)
        s.sendall(connect_packet(client_id, v5=v5))
        p = read_packet(s)
        assert p is not None and p[0] == 2, f"no CONNACK: {p}"
        code = p[1][1]
        if code == 0 or not expect_ok or attempt == 2:
            if code == 0 and attempt == 2:
                note_stale_refusal(f"raw CONNECT {client_id}")
            return s, code
        s.close()
    raise AssertionError("unreachable")


def read_packet(sock, timeout: float = WAIT) -> tuple[int, bytes] | None:
    """One MQTT packet as (type, body), or None when the server closed the connection (EOF or reset)."""
    sock.settimeout(timeout)

    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    try:
        h = exact(1)
        if h is None:
            return None
        length, mult = 0, 1
        while True:
            b = exact(1)
            if b is None:
                return None
            length += (b[0] & 0x7F) * mult
            mult *= 128
            if not b[0] & 0x80:
                break
        body = exact(length)
        return None if body is None else (h[0] >> 4, body)
    except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return None
    except ssl.SSLError as e:
        # a TLS alert from the server (e.g. close_notify variants) also ends the connection
        if "EOF" in str(e) or "alert" in str(e).lower():
            return None
        raise


def wait_closed(sock, timeout: float = WAIT) -> list[tuple[int, bytes]]:
    """Read until the server closes the connection; return the packets it sent before closing."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"connection still open after {timeout}s (packets: {got})")
        try:
            p = read_packet(sock, left)
        except (socket.timeout, TimeoutError):
            continue
        if p is None:
            return got
        got.append(p)


# ---------------------------------------------------------------------------------------------------------------------
# metrics


def metrics(server) -> dict[str, float]:
    """GET /metrics as {'name{labels}': value}."""
    status, body, _ = server.http("GET", "/metrics")
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def refused_within(server, dev: Device, client_id: str, within: float = 1.0) -> int:
    """After a registry change that should refuse `dev`: CONNECT until refused (bounded by the issue's one second
    for changes to reach the gateway); return the attempts needed. An accepted attempt is closed at once."""
    deadline = time.monotonic() + within
    attempts = 0
    while True:
        attempts += 1
        started = time.monotonic()
        with Paho(server, dev, client_id) as p:
            if p.connect().value == NOT_AUTHORIZED:
                return attempts
        assert started < deadline, f"{client_id}: a CONNECT was still accepted {within}s after the change"
