"""CreateCertificateFromCsr: the issued certificate carries exactly the CSR's key and subject; bad CSRs are refused
and leave nothing behind."""

import re

import pytest

from helpers import (cert_id, cert_id_openssl, cert_pubkey, csr_pubkey, der_to_pem, expect_error, make_csr,
                     nothing_stored, openssl, pem_body, subject_rfc2253, x509_text)

AWS_NOT_AFTER = 2524607999  # 2049-12-31T23:59:59Z


@pytest.mark.parametrize("kind,text", [
    ("rsa2048", "Public-Key: (2048 bit)"),
    ("rsa4096", "Public-Key: (4096 bit)"),
    ("p256", "NIST CURVE: P-256"),
    ("p384", "NIST CURVE: P-384"),
])
def test_issued_certificate_carries_csr_key_and_subject(server, iot, tmp_path, kind, text):
    _, csr = make_csr(tmp_path, f"dev-{kind}", kind, subj=f"/C=JP/ST=Tokyo/O=Interop K.K./CN=device-{kind}")
    resp = iot.create_certificate_from_csr(certificateSigningRequest=csr.read_text(), setAsActive=True)
    assert set(resp) - {"ResponseMetadata"} == {"certificateArn", "certificateId", "certificatePem"}
    pem = tmp_path / "issued.pem"
    pem.write_text(resp["certificatePem"])

    assert cert_pubkey(pem) == csr_pubkey(csr)
    assert text in x509_text(pem)
    assert subject_rfc2253(pem) == subject_rfc2253(csr, "req")
    assert openssl("x509", "-in", pem, "-noout", "-enddate").stdout.strip() == "notAfter=Dec 31 23:59:59 2049 GMT"
    cid = resp["certificateId"]
    assert cid == cert_id(resp["certificatePem"]) == cert_id_openssl(pem)
    assert resp["certificateArn"] == f"arn:aws:iot:us-east-1:{server.default.id}:cert/{cid}"
    # the issued certificate chains to the server's device CA (verify against what the server published)
    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["status"] == "ACTIVE"
    assert d["validity"]["notAfter"].timestamp() == AWS_NOT_AFTER
    assert d["certificateMode"] == "DEFAULT"
    assert d["ownedBy"] == server.default.id


def test_csr_via_cli_inactive_by_default_and_reuse_gives_new_cert(server, iot, tmp_path):
    _, csr = make_csr(tmp_path, "clidev", "p256")
    rc, out, err = server.aws("create-certificate-from-csr", "--certificate-signing-request", f"file://{csr}")
    assert rc == 0, err
    assert re.fullmatch(r"[0-9a-f]{64}", out["certificateId"])
    assert iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]["status"] == \
        "INACTIVE"
    again = iot.create_certificate_from_csr(certificateSigningRequest=csr.read_text())
    assert again["certificateId"] != out["certificateId"]  # a new, distinct certificate (new serial)
    ids = {c["certificateId"] for c in iot.list_certificates()["certificates"]}
    assert ids == {out["certificateId"], again["certificateId"]}


def test_csr_with_broken_signature_is_refused(server, iot, tmp_path):
    _, csr = make_csr(tmp_path, "tampered", "rsa2048")
    der = bytearray(pem_body(csr.read_text()))
    der[-1] ^= 0x01  # the last byte of a CSR is the last byte of its signature BIT STRING
    bad = der_to_pem(bytes(der), "CERTIFICATE REQUEST")
    (tmp_path / "bad.csr").write_text(bad)
    # openssl agrees the CSR is still well-formed but its signature does not verify
    proc = openssl("req", "-in", tmp_path / "bad.csr", "-noout", "-text")
    assert "Certificate Request" in proc.stdout
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.create_certificate_from_csr(certificateSigningRequest=bad, setAsActive=True)


def test_csr_with_rsa1024_key_is_refused(server, iot, tmp_path):
    _, csr = make_csr(tmp_path, "weak", "rsa1024")
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.create_certificate_from_csr(certificateSigningRequest=csr.read_text(), setAsActive=True)


@pytest.mark.parametrize("garbage", [
    "not a csr",
    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
])
def test_garbage_csr_is_refused(server, iot, garbage):
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.create_certificate_from_csr(certificateSigningRequest=garbage)
