"""RegisterCertificate (chain checked against the named or registered CA) and RegisterCertificateWithoutCA (MAR)."""

import pytest

from helpers import cert_id, expect_error, make_device_cert, make_root_ca, nothing_stored, register_ca


def test_register_device_cert_under_registered_ca(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca")
    pem = make_device_cert(ca, "dev1").read_text()
    resp = iot.register_certificate(certificatePem=pem, setAsActive=True)
    cid = cert_id(pem)
    assert resp["certificateId"] == cid
    assert resp["certificateArn"] == f"arn:aws:iot:us-east-1:{server.default.id}:cert/{cid}"
    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["status"] == "ACTIVE"
    assert d["caCertificateId"] == ca.id
    assert d["certificateMode"] == "DEFAULT"  # inherited from the CA
    assert d["ownedBy"] == server.default.id
    assert d["certificatePem"].strip() == pem.strip()

    by_ca = iot.list_certificates_by_ca(caCertificateId=ca.id)["certificates"]
    assert [(c["certificateId"], c["status"], c["certificateMode"]) for c in by_ca] == [(cid, "ACTIVE", "DEFAULT")]
    assert by_ca[0]["certificateArn"] == resp["certificateArn"]


@pytest.mark.parametrize("kwargs,status", [
    ({}, "INACTIVE"),
    ({"status": "INACTIVE"}, "INACTIVE"),
    ({"status": "ACTIVE"}, "ACTIVE"),
    ({"status": "REVOKED"}, "REVOKED"),
    ({"setAsActive": True}, "ACTIVE"),
])
def test_register_status(server, iot, tmp_path, kwargs, status):
    ca = register_ca(iot, tmp_path / "ca")
    pem = make_device_cert(ca, "dev", kind="p256").read_text()
    cid = iot.register_certificate(certificatePem=pem, **kwargs)["certificateId"]
    assert iot.describe_certificate(certificateId=cid)["certificateDescription"]["status"] == status


def test_register_with_named_ca_pem_and_sni_only_ca_mode_inherited(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca", mode="SNI_ONLY", cn="SNI CA")
    pem = make_device_cert(ca, "dev").read_text()
    cid = iot.register_certificate(certificatePem=pem, caCertificatePem=ca.pem_text, setAsActive=True)["certificateId"]
    d = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["certificateMode"] == "SNI_ONLY"
    assert d["caCertificateId"] == ca.id
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca.id)["certificates"]
    assert [c["certificateMode"] for c in by_ca] == ["SNI_ONLY"]


def test_device_cert_from_unregistered_ca(server, iot, tmp_path):
    register_ca(iot, tmp_path / "registered")
    stranger = make_root_ca(tmp_path / "stranger", "Stranger CA")
    pem = make_device_cert(stranger, "dev").read_text()
    with nothing_stored(iot):
        with expect_error("CertificateValidationException", 400):
            iot.register_certificate(certificatePem=pem, setAsActive=True)
        # naming the unregistered CA explicitly does not help either
        with expect_error("CertificateValidationException", 400):
            iot.register_certificate(certificatePem=pem, caCertificatePem=stranger.pem_text, setAsActive=True)


def test_named_ca_did_not_sign_the_cert(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "a", cn="CA A")
    other = register_ca(iot, tmp_path / "b", cn="CA B")
    pem = make_device_cert(ca, "dev").read_text()
    with nothing_stored(iot):
        with expect_error("CertificateValidationException", 400):
            iot.register_certificate(certificatePem=pem, caCertificatePem=other.pem_text)


def test_same_subject_different_key_is_not_a_signer(server, iot, tmp_path):
    """A CA with the signer's subject name but another key does not validate the chain."""
    real = make_root_ca(tmp_path / "real", "Lookalike CA")
    register_ca(iot, tmp_path / "fake", cn="Lookalike CA")
    pem = make_device_cert(real, "dev").read_text()
    with nothing_stored(iot):
        with expect_error("CertificateValidationException", 400):
            iot.register_certificate(certificatePem=pem, setAsActive=True)


@pytest.mark.parametrize("garbage", [
    "garbage",
    "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG\n-----END CERTIFICATE-----\n",
])
def test_garbage_pem(server, iot, tmp_path, garbage):
    register_ca(iot, tmp_path / "ca")
    with nothing_stored(iot):
        with expect_error("CertificateValidationException", 400):
            iot.register_certificate(certificatePem=garbage, setAsActive=True)
        with expect_error("CertificateValidationException", 400):
            iot.register_certificate_without_ca(certificatePem=garbage, status="ACTIVE")


def test_pending_activation_refused(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca")
    pem = make_device_cert(ca, "dev").read_text()
    with nothing_stored(iot):
        with expect_error("CertificateStateException", 406):
            iot.register_certificate(certificatePem=pem, status="PENDING_ACTIVATION")
        with expect_error("CertificateStateException", 406):
            iot.register_certificate_without_ca(certificatePem=pem, status="PENDING_ACTIVATION")


def test_register_twice(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca")
    pem = make_device_cert(ca, "dev").read_text()
    cid = iot.register_certificate(certificatePem=pem, setAsActive=True)["certificateId"]
    with nothing_stored(iot):
        with expect_error("ResourceAlreadyExistsException", 409) as e:
            iot.register_certificate(certificatePem=pem, setAsActive=True)
        with expect_error("ResourceAlreadyExistsException", 409):
            iot.register_certificate_without_ca(certificatePem=pem)
    # modeled members of ResourceAlreadyExistsException name the existing certificate
    assert e["response"].get("resourceId") == cid
    assert e["response"].get("resourceArn") == f"arn:aws:iot:us-east-1:{server.default.id}:cert/{cid}"


def test_register_without_ca_multi_account(server, iot, iot2, account2, tmp_path):
    ca = make_root_ca(tmp_path / "unregistered", "Vendor CA")
    pem = make_device_cert(ca, "mar-dev").read_text()
    cid = cert_id(pem)
    r1 = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    r2 = iot2.register_certificate_without_ca(certificatePem=pem, status="INACTIVE")
    assert r1["certificateId"] == r2["certificateId"] == cid
    assert r1["certificateArn"] == f"arn:aws:iot:us-east-1:{server.default.id}:cert/{cid}"
    assert r2["certificateArn"] == f"arn:aws:iot:us-east-1:{account2.id}:cert/{cid}"
    d1 = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    d2 = iot2.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d1["certificateMode"] == d2["certificateMode"] == "SNI_ONLY"
    assert not d1.get("caCertificateId") and not d2.get("caCertificateId")
    assert (d1["status"], d2["status"]) == ("ACTIVE", "INACTIVE")
    assert (d1["ownedBy"], d2["ownedBy"]) == (server.default.id, account2.id)
    # each account's change stays in that account
    iot2.update_certificate(certificateId=cid, newStatus="ACTIVE")
    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    assert iot2.describe_certificate(certificateId=cid)["certificateDescription"]["status"] == "ACTIVE"
    # listed with the mode
    listed = iot.list_certificates()["certificates"]
    assert [(c["certificateId"], c["certificateMode"]) for c in listed] == [(cid, "SNI_ONLY")]


def test_self_signed_leaf_without_ca(server, iot, tmp_path):
    from helpers import make_self_signed_leaf

    pem = make_self_signed_leaf(tmp_path, "selfsigned").read_text()
    cid = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")["certificateId"]
    assert cid == cert_id(pem)


def test_ambiguous_issuer_needs_ca_pem(server, iot, tmp_path):
    """Two registered CAs with the same subject and key (a re-issued CA): the caller must name one."""
    ca1 = make_root_ca(tmp_path / "twin", "Twin CA")
    ca2_pem = tmp_path / "twin" / "rootCA-reissued.pem"
    from helpers import openssl

    openssl("x509", "-req", "-days", "2000", "-extfile", "rootCA_openssl.conf", "-extensions", "v3_ca",
            "-in", "rootCA.csr", "-signkey", "rootCA.key", "-out", ca2_pem, cwd=ca1.dir)
    for pem in (ca1.pem_text, ca2_pem.read_text()):
        iot.register_ca_certificate(caCertificate=pem, certificateMode="SNI_ONLY", setAsActive=True)
    leaf = make_device_cert(ca1, "dev").read_text()
    with nothing_stored(iot):
        with expect_error("CertificateConflictException", 409):
            iot.register_certificate(certificatePem=leaf, setAsActive=True)
    cid = iot.register_certificate(certificatePem=leaf, caCertificatePem=ca2_pem.read_text(),
                                   setAsActive=True)["certificateId"]
    assert iot.describe_certificate(certificateId=cid)["certificateDescription"]["caCertificateId"] == \
        cert_id(ca2_pem.read_text())
