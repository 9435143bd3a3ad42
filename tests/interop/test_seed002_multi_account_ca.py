"""Done-when #2: seed 002's multi-account CA walkthrough, with the seed's own openssl and `aws iot` command lines.

Account 1 registers the CA in DEFAULT mode with a verification certificate; account 2 registers the same CA in
SNI_ONLY mode without one (awscli 1.46.3 does not demand --verification-certificate for SNI_ONLY, unlike the
aws/aws-cli#7591 report, so the CLI is used for that step too). A DEFAULT registration of the same CA by another
account in the same region is refused; in another region it is allowed.
"""

from helpers import cert_id, cert_id_openssl, make_root_ca, make_verification_cert, nothing_stored, x509_text


def ca_description(server, ca_id, account=None, region="us-east-1", cwd=None):
    rc, out, err = server.aws("describe-ca-certificate", "--region", region, "--certificate-id", ca_id,
                              account=account, cwd=cwd)
    assert rc == 0, err
    return out["certificateDescription"]


def registration_code(server, account=None, region="us-east-1", cwd=None):
    rc, out, err = server.aws("get-registration-code", "--region", region, account=account, cwd=cwd)
    assert rc == 0, err
    assert set(out) == {"registrationCode"}
    code = out["registrationCode"]
    assert len(code) == 64 and int(code, 16) >= 0
    return code


def test_seed002_same_ca_in_two_accounts(server, tmp_path):
    acct1 = server.default
    acct2 = server.account("second")
    acct3 = server.account("third")
    d = tmp_path / "pki"
    ca = make_root_ca(d)  # openssl genrsa 2048 / rootCA_openssl.conf / req / x509 -req -signkey
    assert "CA:TRUE" in x509_text(ca.pem)
    ca_id = cert_id_openssl(ca.pem)

    # --- account 1: DEFAULT mode with a verification certificate -----------------------------------------------
    code1 = registration_code(server, cwd=d)
    assert registration_code(server, cwd=d) == code1  # stable until deleted
    make_verification_cert(ca, code1)  # openssl genrsa / req CN=<code> / x509 -req -CA rootCA.pem -CAkey rootCA.key
    rc, out, err = server.aws("register-ca-certificate", "--ca-certificate", "file://rootCA.pem",
                              "--verification-cert", "file://verificationCert.pem", "--set-as-active",
                              "--allow-auto-registration", "--region", "us-east-1", cwd=d)
    assert rc == 0, err
    assert out == {"certificateArn": f"arn:aws:iot:us-east-1:{acct1.id}:cacert/{ca_id}", "certificateId": ca_id}

    desc1 = ca_description(server, ca_id, cwd=d)
    assert desc1["certificateArn"] == out["certificateArn"]
    assert desc1["certificateId"] == ca_id == cert_id(desc1["certificatePem"])
    assert desc1["status"] == "ACTIVE"
    assert desc1["autoRegistrationStatus"] == "ENABLE"
    assert desc1["certificateMode"] == "DEFAULT"
    assert desc1["ownedBy"] == acct1.id
    assert desc1["customerVersion"] == 1
    assert desc1["generationId"]
    assert isinstance(desc1["creationDate"], (int, float))
    assert desc1["validity"]["notAfter"] > desc1["validity"]["notBefore"]

    # --- account 2: the same CA in SNI_ONLY mode, no verification certificate ----------------------------------
    rc, out2, err = server.aws("register-ca-certificate", "--ca-certificate", "file://rootCA.pem",
                               "--certificate-mode", "SNI_ONLY", "--set-as-active", "--allow-auto-registration",
                               "--region", "us-east-1", account=acct2, cwd=d)
    assert rc == 0, err
    assert out2 == {"certificateArn": f"arn:aws:iot:us-east-1:{acct2.id}:cacert/{ca_id}", "certificateId": ca_id}
    desc2 = ca_description(server, ca_id, account=acct2, cwd=d)
    assert desc2["certificateMode"] == "SNI_ONLY"
    assert desc2["status"] == "ACTIVE"
    assert desc2["autoRegistrationStatus"] == "ENABLE"
    assert desc2["ownedBy"] == acct2.id
    assert desc2["certificateArn"] == out2["certificateArn"]
    # account 1 still sees its own DEFAULT registration
    assert ca_description(server, ca_id, cwd=d)["certificateMode"] == "DEFAULT"

    rc, lst, err = server.aws("list-ca-certificates", account=acct2, cwd=d)
    assert rc == 0, err
    assert [c["certificateId"] for c in lst["certificates"]] == [ca_id]

    # --- a DEFAULT registration of that CA by another account in us-east-1 is refused ------------------------------
    iot2, iot3 = server.iot(account=acct2), server.iot(account=acct3)
    with nothing_stored(server.iot(), iot2, iot3):
        code2 = registration_code(server, account=acct2, cwd=d)
        assert code2 != code1
        make_verification_cert(ca, code2, name="verificationCert2")
        rc, out, err = server.aws("register-ca-certificate", "--ca-certificate", "file://rootCA.pem",
                                  "--verification-certificate", "file://verificationCert2.pem",
                                  "--certificate-mode", "DEFAULT", "--set-as-active", "--region", "us-east-1",
                                  account=acct2, cwd=d)
        assert rc == 255 and out is None
        assert "(ResourceAlreadyExistsException)" in err and "RegisterCACertificate" in err, err

        # an account that does not hold the CA at all is refused too: DEFAULT is one account per region
        code3 = registration_code(server, account=acct3, cwd=d)
        make_verification_cert(ca, code3, name="verificationCert3")
        rc, out, err = server.aws("register-ca-certificate", "--ca-certificate", "file://rootCA.pem",
                                  "--verification-certificate", "file://verificationCert3.pem", "--set-as-active",
                                  "--region", "us-east-1", account=acct3, cwd=d)
        assert rc == 255 and "(ResourceAlreadyExistsException)" in err, err
    assert ca_description(server, ca_id, account=acct2, cwd=d)["certificateMode"] == "SNI_ONLY"

    # --- in another region, account 2 may hold it in DEFAULT mode ------------------------------------------------------
    code_w = registration_code(server, account=acct2, region="us-west-2", cwd=d)
    make_verification_cert(ca, code_w, name="verificationCertW")
    rc, outw, err = server.aws("register-ca-certificate", "--ca-certificate", "file://rootCA.pem",
                               "--verification-cert", "file://verificationCertW.pem", "--set-as-active",
                               "--allow-auto-registration", "--region", "us-west-2", account=acct2, cwd=d)
    assert rc == 0, err
    assert outw == {"certificateArn": f"arn:aws:iot:us-west-2:{acct2.id}:cacert/{ca_id}", "certificateId": ca_id}
    descw = ca_description(server, ca_id, account=acct2, region="us-west-2", cwd=d)
    assert descw["certificateMode"] == "DEFAULT" and descw["status"] == "ACTIVE"
    # us-east-1 registration of account 2 unchanged
    assert ca_description(server, ca_id, account=acct2, cwd=d)["certificateMode"] == "SNI_ONLY"
