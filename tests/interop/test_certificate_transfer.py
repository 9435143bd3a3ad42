"""Certificate transfer between accounts: transfer, accept, reject, cancel and their refusals."""

import botocore.exceptions
import pytest

from helpers import expect_error, nothing_stored

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


def desc(client, cid):
    return client.describe_certificate(certificateId=cid)["certificateDescription"]


def test_transfer_and_accept(server, iot, iot2, account2):
    kc = iot.create_keys_and_certificate(setAsActive=False)
    cid = kc["certificateId"]
    # CLI, as a user would type it
    rc, out, err = server.aws("transfer-certificate", "--certificate-id", cid, "--target-aws-account", account2.id,
                              "--transfer-message", "to staging")
    assert rc == 0, err
    # as in the AWS CLI's own example, the ARN the certificate will have in the target account
    assert out == {"transferredCertificateArn": f"arn:aws:iot:us-east-1:{account2.id}:cert/{cid}"}
    d = desc(iot, cid)
    assert d["status"] == "PENDING_TRANSFER"
    assert d["transferData"]["transferMessage"] == "to staging"
    assert "transferDate" in d["transferData"]

    outgoing = iot.list_outgoing_certificates()["outgoingCertificates"]
    assert len(outgoing) == 1
    o = outgoing[0]
    assert (o["certificateId"], o["transferredTo"], o["transferMessage"]) == (cid, account2.id, "to staging")
    assert o["certificateArn"].startswith("arn:aws:iot:us-east-1:") and o["certificateArn"].endswith(f":cert/{cid}")
    assert "transferDate" in o and "creationDate" in o

    # the target sees the pending certificate
    incoming = iot2.list_certificates()["certificates"]
    assert [(c["certificateId"], c["status"]) for c in incoming] == [(cid, "PENDING_TRANSFER")]

    # a pending certificate cannot be activated by the source in the meantime
    with expect_error("CertificateStateException", 406):
        iot.update_certificate(certificateId=cid, newStatus="ACTIVE")

    iot2.accept_certificate_transfer(certificateId=cid, setAsActive=True)
    d2 = desc(iot2, cid)
    assert d2["status"] == "ACTIVE"
    assert d2["ownedBy"] == account2.id
    assert d2["previousOwnedBy"] == server.default.id
    assert d2["certificateArn"] == f"arn:aws:iot:us-east-1:{account2.id}:cert/{cid}"
    assert "acceptDate" in d2["transferData"]
    # gone from the source
    with expect_error("ResourceNotFoundException", 404):
        iot.describe_certificate(certificateId=cid)
    assert iot.list_certificates()["certificates"] == []
    assert iot.list_outgoing_certificates()["outgoingCertificates"] == []


def test_accept_twice(server, iot, iot2, account2):
    cid = iot.create_keys_and_certificate(setAsActive=False)["certificateId"]
    iot.transfer_certificate(certificateId=cid, targetAwsAccount=account2.id)
    iot2.accept_certificate_transfer(certificateId=cid, setAsActive=True)
    with nothing_stored(iot, iot2):
        with expect_error("TransferAlreadyCompletedException", 410):
            iot2.accept_certificate_transfer(certificateId=cid)
        with expect_error("TransferAlreadyCompletedException", 410):
            iot2.reject_certificate_transfer(certificateId=cid)
    assert desc(iot2, cid)["status"] == "ACTIVE"


def test_accept_without_set_as_active_is_inactive(server, iot, iot2, account2):
    cid = iot.create_keys_and_certificate(setAsActive=False)["certificateId"]
    iot.transfer_certificate(certificateId=cid, targetAwsAccount=account2.id)
    iot2.accept_certificate_transfer(certificateId=cid)
    assert desc(iot2, cid)["status"] == "INACTIVE"


def test_transfer_reject(server, iot, iot2, account2):
    cid = iot.create_keys_and_certificate(setAsActive=False)["certificateId"]
    iot.transfer_certificate(certificateId=cid, targetAwsAccount=account2.id)
    # only the target can reject; only the source can cancel
    with expect_error("ResourceNotFoundException", 404):
        iot2.cancel_certificate_transfer(certificateId=cid)
    iot2.reject_certificate_transfer(certificateId=cid, rejectReason="not ours")
    d = desc(iot, cid)
    assert d["status"] == "INACTIVE"
    assert d["ownedBy"] == server.default.id
    assert d["transferData"]["rejectReason"] == "not ours"
    assert "rejectDate" in d["transferData"]
    assert iot2.list_certificates()["certificates"] == []
    assert iot.list_outgoing_certificates()["outgoingCertificates"] == []
    with expect_error("ResourceNotFoundException", 404):
        iot2.describe_certificate(certificateId=cid)
    with expect_error("TransferAlreadyCompletedException", 410):
        iot.cancel_certificate_transfer(certificateId=cid)


def test_transfer_cancel(server, iot, iot2, account2):
    cid = iot.create_keys_and_certificate(setAsActive=False)["certificateId"]
    iot.transfer_certificate(certificateId=cid, targetAwsAccount=account2.id)
    iot.cancel_certificate_transfer(certificateId=cid)
    assert desc(iot, cid)["status"] == "INACTIVE"
    assert iot2.list_certificates()["certificates"] == []
    assert iot.list_outgoing_certificates()["outgoingCertificates"] == []
    # the target can no longer accept the cancelled transfer (AWS's exact code here is not documented)
    with nothing_stored(iot, iot2):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iot2.accept_certificate_transfer(certificateId=cid)
    assert e.value.response["Error"]["Code"] in ("TransferAlreadyCompletedException", "ResourceNotFoundException")
    assert desc(iot, cid)["ownedBy"] == server.default.id


def test_transfer_refusals(server, iot, iot2, account2):
    active = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    with_policy = iot.create_keys_and_certificate(setAsActive=False)
    iot.create_policy(policyName="p", policyDocument=POLICY)
    iot.attach_policy(policyName="p", target=with_policy["certificateArn"])
    with nothing_stored(iot, iot2):
        with expect_error("CertificateStateException", 406):
            iot.transfer_certificate(certificateId=active, targetAwsAccount=account2.id)
        with expect_error("TransferConflictException", 409):
            iot.transfer_certificate(certificateId=with_policy["certificateId"], targetAwsAccount=account2.id)
        with expect_error("ResourceNotFoundException", 404):
            iot.transfer_certificate(certificateId="cd" * 32, targetAwsAccount=account2.id)
        # the target cannot accept a certificate that was never offered
        with expect_error("ResourceNotFoundException", 404):
            iot2.accept_certificate_transfer(certificateId=active)
    assert desc(iot, active)["status"] == "ACTIVE"
