"""Device gateway, identity: certificates the registry does not know are refused; certificates of the customer's own
CA (register-ca-certificate + register-certificate, made with openssl the way the seeds do) connect when ACTIVE
and a policy is attached."""

from __future__ import annotations

import pytest

from helpers import make_key, make_self_signed_leaf, openssl, register_ca, x509_text
from mqtt_helpers import ALLOW_ALL, NOT_AUTHORIZED, Device, MosquittoSub, Paho, mosquitto_pub, refused_within, unique


def test_unknown_self_signed_certificate_is_refused(server, tmp_path):
    pem = make_self_signed_leaf(tmp_path, "stranger")
    dev = Device("stranger", "", "", pem, tmp_path / "stranger.key")
    with MosquittoSub(server, dev, "stranger", ["x/y"]) as sub:
        assert sub.wait_exit() != 0
    assert "Connection Refused: not authorised" in sub.output, sub.output
    with Paho(server, dev, "stranger") as p:
        assert p.connect().value == NOT_AUTHORIZED
    assert "not registered" in server.log_tail(200)


def _device_cert(ca, name: str, v3: bool) -> Device:
    """The seeds' device certificate: `openssl x509 -req -in device.csr -CA rootCA.pem -CAkey rootCA.key
    -CAcreateserial -days 365 -sha256` (X.509 v1 with OpenSSL 3.0), or the same with -extfile for v3."""
    d = ca.dir
    key = make_key(d, name)
    openssl("req", "-new", "-key", key, "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", ca.pem, "-CAkey", ca.key, "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "365", "-sha256"]
    if v3:
        (d / f"{name}.ext").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                       "extendedKeyUsage=clientAuth\n")
        args += ["-extfile", f"{name}.ext"]
    openssl(*args, cwd=d)
    text = x509_text(d / f"{name}.pem")
    assert ("Version: 3" in text) == v3, text[:200]
    return Device(name, "", "", d / f"{name}.pem", key)


def _register_and_use(server, iot, ca, dev: Device, status: str = "ACTIVE"):
    r = iot.register_certificate(certificatePem=dev.cert.read_text(), caCertificatePem=ca.pem_text, status=status)
    dev.cert_id, dev.arn = r["certificateId"], r["certificateArn"]
    iot.create_policy(policyName=f"{dev.name}-policy", policyDocument=ALLOW_ALL)
    iot.attach_policy(policyName=f"{dev.name}-policy", target=dev.arn)
    return dev


def _publishes(server, dev: Device):
    topic = f"ca/{unique()}"
    with Paho(server, dev, f"{dev.name}-sub") as p:
        p.connect_ok()
        assert p.subscribe(topic) == [1]
        out = mosquitto_pub(server, dev, f"{dev.name}-pub", topic, "via-own-ca", qos=1, version="mqttv5")
        assert out.returncode == 0 and "RC:0" in out.stdout, out.stdout + out.stderr
        assert p.wait_message(topic)[1] == b"via-own-ca"


@pytest.mark.parametrize("v3", [pytest.param(False, id="x509v1"), pytest.param(True, id="x509v3")])
def test_certificate_of_registered_ca_connects(server, iot, tmp_path, v3):
    ca = register_ca(iot, tmp_path / "ca")
    dev = _register_and_use(server, iot, ca, _device_cert(ca, "cadev", v3))
    _publishes(server, dev)


def test_registered_but_inactive_ca_certificate_is_refused_until_activated(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca")
    dev = _register_and_use(server, iot, ca, _device_cert(ca, "pending", v3=True), status="INACTIVE")
    with Paho(server, dev, "pending") as p:
        assert p.connect().value == NOT_AUTHORIZED
    iot.update_certificate(certificateId=dev.cert_id, newStatus="ACTIVE")
    _publishes(server, dev)
    # deactivating the CA refuses its certificates again
    iot.update_ca_certificate(certificateId=ca.id, newStatus="INACTIVE")
    refused_within(server, dev, "after-ca-off")
