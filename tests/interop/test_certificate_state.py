"""Certificate state machine: UpdateCertificate, DeleteCertificate and their refusals."""

import pytest

from helpers import expect_error, nothing_stored

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


def status(iot, cid):
    return iot.describe_certificate(certificateId=cid)["certificateDescription"]["status"]


def new_cert(iot, active=False):
    return iot.create_keys_and_certificate(setAsActive=active)


def test_update_certificate_transitions(server, iot):
    cid = new_cert(iot)["certificateId"]
    assert status(iot, cid) == "INACTIVE"
    before = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    iot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    after = iot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert after["status"] == "ACTIVE"
    assert after["lastModifiedDate"] >= before["lastModifiedDate"]
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    assert status(iot, cid) == "INACTIVE"
    iot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    iot.update_certificate(certificateId=cid, newStatus="REVOKED")
    assert status(iot, cid) == "REVOKED"
    # REVOKED is final
    for target in ("ACTIVE", "INACTIVE"):
        with expect_error("CertificateStateException", 406):
            iot.update_certificate(certificateId=cid, newStatus=target)
    assert status(iot, cid) == "REVOKED"
    # and a revoked certificate can be deleted
    iot.delete_certificate(certificateId=cid)
    with expect_error("ResourceNotFoundException", 404):
        iot.describe_certificate(certificateId=cid)


@pytest.mark.parametrize("internal", ["PENDING_TRANSFER", "PENDING_ACTIVATION"])
def test_internal_states_not_settable(server, iot, internal):
    cid = new_cert(iot)["certificateId"]
    with nothing_stored(iot):
        with expect_error("CertificateStateException", 406):
            iot.update_certificate(certificateId=cid, newStatus=internal)
    assert status(iot, cid) == "INACTIVE"


def test_delete_refused_while_active(server, iot):
    cid = new_cert(iot, active=True)["certificateId"]
    with nothing_stored(iot):
        with expect_error("CertificateStateException", 406):
            iot.delete_certificate(certificateId=cid)
        with expect_error("CertificateStateException", 406):
            iot.delete_certificate(certificateId=cid, forceDelete=True)
    iot.update_certificate(certificateId=cid, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=cid)
    assert iot.list_certificates()["certificates"] == []


def test_delete_refused_while_attached_to_thing(server, iot):
    kc = new_cert(iot)
    iot.create_thing(thingName="t")
    iot.attach_thing_principal(thingName="t", principal=kc["certificateArn"])
    with nothing_stored(iot):
        with expect_error("DeleteConflictException", 409):
            iot.delete_certificate(certificateId=kc["certificateId"])
        # forceDelete skips only the policy check
        with expect_error("DeleteConflictException", 409):
            iot.delete_certificate(certificateId=kc["certificateId"], forceDelete=True)
    iot.detach_thing_principal(thingName="t", principal=kc["certificateArn"])
    iot.delete_certificate(certificateId=kc["certificateId"])
    assert iot.list_certificates()["certificates"] == []


def test_delete_with_policy_and_force_delete(server, iot):
    kc = new_cert(iot)
    iot.create_policy(policyName="p1", policyDocument=POLICY)
    iot.create_policy(policyName="p2", policyDocument=POLICY)
    iot.attach_policy(policyName="p1", target=kc["certificateArn"])
    iot.attach_policy(policyName="p2", target=kc["certificateArn"])
    with nothing_stored(iot):
        with expect_error("DeleteConflictException", 409):
            iot.delete_certificate(certificateId=kc["certificateId"])
    iot.delete_certificate(certificateId=kc["certificateId"], forceDelete=True)
    with expect_error("ResourceNotFoundException", 404):
        iot.describe_certificate(certificateId=kc["certificateId"])
    # the policies remain, their attachments are gone
    assert sorted(p["policyName"] for p in iot.list_policies()["policies"]) == ["p1", "p2"]
    assert iot.list_targets_for_policy(policyName="p1")["targets"] == []
    assert iot.list_targets_for_policy(policyName="p2")["targets"] == []
    iot.delete_policy(policyName="p1")


@pytest.mark.parametrize("bad_id", ["xyz", "0" * 63, "g" * 64, "../" + "a" * 61])
def test_malformed_certificate_id(server, bad_id):
    iot = server.iot(validate=False)
    with nothing_stored(server.iot()):
        for call in (lambda: iot.describe_certificate(certificateId=bad_id),
                     lambda: iot.update_certificate(certificateId=bad_id, newStatus="ACTIVE"),
                     lambda: iot.delete_certificate(certificateId=bad_id)):
            with expect_error("InvalidRequestException", 400):
                call()


def test_unknown_certificate_id(server, iot):
    unknown = "ab" * 32
    with nothing_stored(iot):
        with expect_error("ResourceNotFoundException", 404):
            iot.describe_certificate(certificateId=unknown)
        with expect_error("ResourceNotFoundException", 404):
            iot.update_certificate(certificateId=unknown, newStatus="INACTIVE")
        with expect_error("ResourceNotFoundException", 404):
            iot.delete_certificate(certificateId=unknown)


def test_invalid_new_status_value(server):
    iot = server.iot(validate=False)
    cid = server.iot().create_keys_and_certificate(setAsActive=False)["certificateId"]
    with nothing_stored(server.iot()):
        with expect_error("InvalidRequestException", 400):
            iot.update_certificate(certificateId=cid, newStatus="BOGUS")


def test_list_certificates_marker_paging(server, iot):
    ids = {new_cert(iot)["certificateId"] for _ in range(3)}
    pages = list(iot.get_paginator("list_certificates").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3
    seen = [c["certificateId"] for p in pages for c in p["certificates"]]
    assert sorted(seen) == sorted(ids) and len(seen) == 3
    asc = [c["creationDate"] for c in iot.list_certificates(ascendingOrder=True)["certificates"]]
    assert asc == sorted(asc)


def test_list_certificates_default_order_and_bad_paging(server, iot):
    ids = [new_cert(iot)["certificateId"] for _ in range(3)]
    listed = iot.list_certificates()["certificates"]
    dates = [c["creationDate"] for c in listed]
    assert dates == sorted(dates, reverse=True)  # newest first unless isAscendingOrder=true
    assert set(c["certificateId"] for c in listed) == set(ids)
    raw = server.iot(validate=False)
    with expect_error("InvalidRequestException", 400):
        raw.list_certificates(pageSize=0)
    with expect_error("InvalidRequestException", 400):
        raw.list_certificates(pageSize=251)
    with expect_error("InvalidRequestException", 400):
        raw.list_certificates(marker="!!!not-a-marker")


def test_delete_refused_while_pending_transfer(server, iot, account2):
    cid = new_cert(iot)["certificateId"]
    iot.transfer_certificate(certificateId=cid, targetAwsAccount=account2.id)
    with nothing_stored(iot):
        with expect_error("CertificateStateException", 406):
            iot.delete_certificate(certificateId=cid)
