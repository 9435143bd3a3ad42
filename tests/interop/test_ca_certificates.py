"""CA certificates: proof of possession, modes, management, and the registration code."""

import botocore.exceptions
import pytest

from helpers import (expect_error, make_device_cert, make_root_ca, make_self_signed_leaf,
                     make_verification_cert, nothing_stored, register_ca)


@pytest.fixture
def ca(tmp_path):
    return make_root_ca(tmp_path / "ca", "Bad Input CA")


def test_verification_cert_signed_by_another_key(server, iot, ca, tmp_path):
    code = iot.get_registration_code()["registrationCode"]
    # an impostor CA with the very same subject name: the issuer name matches, the signature does not
    impostor = make_root_ca(tmp_path / "impostor", "Bad Input CA")
    verification = make_verification_cert(ca, code, name="forged", signer=impostor).read_text()
    with nothing_stored(iot):
        with expect_error("RegistrationCodeValidationException", 400):
            iot.register_ca_certificate(caCertificate=ca.pem_text, verificationCertificate=verification,
                                        setAsActive=True)


def test_verification_cert_with_wrong_cn(server, iot, ca):
    code = iot.get_registration_code()["registrationCode"]
    wrong = ("0" if code[0] != "0" else "1") + code[1:]
    verification = make_verification_cert(ca, code, name="wrongcn", cn=wrong).read_text()
    with nothing_stored(iot):
        with expect_error("RegistrationCodeValidationException", 400):
            iot.register_ca_certificate(caCertificate=ca.pem_text, verificationCertificate=verification,
                                        setAsActive=True)


def test_verification_cert_for_another_accounts_code(server, iot, iot2, ca):
    code2 = iot2.get_registration_code()["registrationCode"]
    iot.get_registration_code()
    verification = make_verification_cert(ca, code2, name="other").read_text()
    with nothing_stored(iot, iot2):
        with expect_error("RegistrationCodeValidationException", 400):
            iot.register_ca_certificate(caCertificate=ca.pem_text, verificationCertificate=verification)


def test_non_ca_certificate_as_ca(server, iot, tmp_path):
    leaf = make_self_signed_leaf(tmp_path, "leaf").read_text()
    with nothing_stored(iot):
        with expect_error("CertificateValidationException", 400):
            iot.register_ca_certificate(caCertificate=leaf, certificateMode="SNI_ONLY", setAsActive=True)


def test_garbage_ca_certificate(server, iot):
    with nothing_stored(iot):
        with expect_error("CertificateValidationException", 400):
            iot.register_ca_certificate(caCertificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                                        certificateMode="SNI_ONLY")


def test_default_mode_needs_verification_cert(server, iot, ca):
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            iot.register_ca_certificate(caCertificate=ca.pem_text, setAsActive=True)
        with expect_error("InvalidRequestException", 400):
            iot.register_ca_certificate(caCertificate=ca.pem_text, certificateMode="DEFAULT")


def test_register_same_ca_twice_in_one_account(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca")
    with nothing_stored(iot):
        with expect_error("ResourceAlreadyExistsException", 409):
            iot.register_ca_certificate(caCertificate=ca.pem_text, certificateMode="SNI_ONLY")


def test_ca_lifecycle(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca", set_as_active=False)
    acct = server.default.id
    resp = iot.describe_ca_certificate(certificateId=ca.id)
    d = resp["certificateDescription"]
    assert d["certificateArn"] == f"arn:aws:iot:us-east-1:{acct}:cacert/{ca.id}"
    assert (d["status"], d["autoRegistrationStatus"], d["certificateMode"]) == ("INACTIVE", "DISABLE", "DEFAULT")
    assert d["certificatePem"].strip() == ca.pem_text.strip()
    assert d["ownedBy"] == acct
    assert d["validity"]["notBefore"] < d["validity"]["notAfter"]

    listed = iot.list_ca_certificates()["certificates"]
    assert [(c["certificateId"], c["status"], c["certificateArn"]) for c in listed] == \
        [(ca.id, "INACTIVE", d["certificateArn"])]

    # device certificates cannot be registered under an inactive CA
    pem = make_device_cert(ca, "dev").read_text()
    with nothing_stored(iot):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iot.register_certificate(certificatePem=pem, setAsActive=True)
    assert e.value.response["Error"]["Code"] in ("CertificateValidationException", "CertificateStateException")

    iot.update_ca_certificate(certificateId=ca.id, newStatus="ACTIVE", newAutoRegistrationStatus="ENABLE")
    d2 = iot.describe_ca_certificate(certificateId=ca.id)["certificateDescription"]
    assert (d2["status"], d2["autoRegistrationStatus"]) == ("ACTIVE", "ENABLE")
    assert d2["lastModifiedDate"] >= d["lastModifiedDate"]

    cfg = {"templateBody": '{"Resources":{}}', "roleArn": "arn:aws:iam::123456789012:role/JITPRole"}
    iot.update_ca_certificate(certificateId=ca.id, registrationConfig=cfg)
    r = iot.describe_ca_certificate(certificateId=ca.id)
    assert r["registrationConfig"]["templateBody"] == cfg["templateBody"]
    assert r["registrationConfig"]["roleArn"] == cfg["roleArn"]
    iot.update_ca_certificate(certificateId=ca.id, removeAutoRegistration=True)
    r = iot.describe_ca_certificate(certificateId=ca.id)
    assert not (r.get("registrationConfig") or {}).get("templateBody")

    # now a device certificate registers under it
    cid = iot.register_certificate(certificatePem=pem, setAsActive=True)["certificateId"]
    assert [c["certificateId"] for c in iot.list_certificates_by_ca(caCertificateId=ca.id)["certificates"]] == [cid]

    # delete refused while ACTIVE
    with nothing_stored(iot):
        with expect_error("CertificateStateException", 406):
            iot.delete_ca_certificate(certificateId=ca.id)
    iot.update_ca_certificate(certificateId=ca.id, newStatus="INACTIVE", newAutoRegistrationStatus="DISABLE")
    d3 = iot.describe_ca_certificate(certificateId=ca.id)["certificateDescription"]
    assert (d3["status"], d3["autoRegistrationStatus"]) == ("INACTIVE", "DISABLE")
    iot.delete_ca_certificate(certificateId=ca.id)
    assert iot.list_ca_certificates()["certificates"] == []
    with expect_error("ResourceNotFoundException", 404):
        iot.describe_ca_certificate(certificateId=ca.id)
    with expect_error("ResourceNotFoundException", 404):
        iot.delete_ca_certificate(certificateId=ca.id)


def test_register_ca_with_registration_config_and_sni_only(server, iot, ca):
    cfg = {"templateBody": '{"Resources":{}}', "roleArn": "arn:aws:iam::123456789012:role/JITPRole"}
    rc, out, err = server.aws("register-ca-certificate", "--ca-certificate", f"file://{ca.pem}",
                              "--certificate-mode", "SNI_ONLY", "--set-as-active", "--allow-auto-registration",
                              "--registration-config", '{"templateBody":"{\\"Resources\\":{}}","roleArn":"'
                              + cfg["roleArn"] + '"}')
    assert rc == 0, err
    r = iot.describe_ca_certificate(certificateId=ca.id)
    assert r["certificateDescription"]["certificateMode"] == "SNI_ONLY"
    assert r["registrationConfig"]["templateBody"] == cfg["templateBody"]
    assert r["registrationConfig"]["roleArn"] == cfg["roleArn"]


def test_unknown_and_malformed_ca_ids(server, iot):
    raw = server.iot(validate=False)
    with nothing_stored(iot):
        with expect_error("ResourceNotFoundException", 404):
            iot.describe_ca_certificate(certificateId="ef" * 32)
        with expect_error("ResourceNotFoundException", 404):
            iot.update_ca_certificate(certificateId="ef" * 32, newStatus="ACTIVE")
        with expect_error("InvalidRequestException", 400):
            raw.describe_ca_certificate(certificateId="not-an-id")
        with expect_error("InvalidRequestException", 400):
            raw.delete_ca_certificate(certificateId="0" * 10)


def test_invalid_ca_status(server, iot, tmp_path):
    ca = register_ca(iot, tmp_path / "ca")
    raw = server.iot(validate=False)
    with nothing_stored(iot):
        with expect_error("InvalidRequestException", 400):
            raw.update_ca_certificate(certificateId=ca.id, newStatus="REVOKED")
        with expect_error("InvalidRequestException", 400):
            raw.update_ca_certificate(certificateId=ca.id, newAutoRegistrationStatus="MAYBE")


def test_registration_code_rotation(server, iot, ca):
    rc, out, err = server.aws("get-registration-code")
    assert rc == 0, err
    code = out["registrationCode"]
    assert iot.get_registration_code()["registrationCode"] == code
    old_verification = make_verification_cert(ca, code, name="old").read_text()

    rc, out, err = server.aws("delete-registration-code")
    assert (rc, out) == (0, None), err
    new = iot.get_registration_code()["registrationCode"]
    assert new != code and len(new) == 64

    # proof of possession made for the old code no longer works
    with nothing_stored(iot):
        with expect_error("RegistrationCodeValidationException", 400):
            iot.register_ca_certificate(caCertificate=ca.pem_text, verificationCertificate=old_verification)
    fresh = make_verification_cert(ca, new, name="new").read_text()
    assert iot.register_ca_certificate(caCertificate=ca.pem_text,
                                       verificationCertificate=fresh)["certificateId"] == ca.id


def test_list_ca_certificates_paging(server, iot, tmp_path):
    ids = {register_ca(iot, tmp_path / f"ca{i}", mode="SNI_ONLY", cn=f"CA {i}").id for i in range(3)}
    pages = list(iot.get_paginator("list_ca_certificates").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3
    assert {c["certificateId"] for p in pages for c in p["certificates"]} == ids
