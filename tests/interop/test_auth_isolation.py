"""SigV4 authentication and account isolation."""

import contextlib
import datetime
import http.client
import json
from unittest import mock

import botocore.auth
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import Account
from helpers import expect_error, make_device_cert, nothing_stored, register_ca

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'


def signed_headers(server, method, path, body=b"", account=None, region="us-east-1", service="iot",
                   when=None, extra=None):
    """Sign like botocore does (optionally at a fixed time), return the headers to send."""
    acct = account or server.default
    req = AWSRequest(method=method, url=server.api_url + path, data=body, headers=dict(extra or {}))
    if body:
        req.headers["Content-Type"] = "application/json"
    patch = (mock.patch("botocore.auth.get_current_datetime", return_value=when) if when
             else contextlib.nullcontext())
    with patch:
        botocore.auth.SigV4Auth(Credentials(acct.access_key_id, acct.secret_access_key), service,
                                region).add_auth(req)
    return dict(req.headers.items())


def raw(server, method, path, body=b"", headers=None):
    """Send exactly these headers (urllib adds Host with the port, as the signature expects)."""
    status, data, hdrs = server.http(method, path, body=body or None, headers=headers or {})
    lower = {k.lower(): v for k, v in hdrs.items()}
    return status, (json.loads(data) if data else None), lower


def error_code(hdrs):
    return hdrs.get("x-amzn-errortype", "").split(":")[0]


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def test_no_authorization_header(server, iot):
    with nothing_stored(iot):
        status, body, hdrs = raw(server, "GET", "/things")
        assert status == 403 and error_code(hdrs) == "MissingAuthenticationTokenException"
        assert body["message"]
        status, body, hdrs = raw(server, "POST", "/things/sneaky", b"{}", {"Content-Type": "application/json"})
        assert status == 403 and error_code(hdrs) == "MissingAuthenticationTokenException"


def test_wrong_secret(server, iot):
    bad = Account("bad", server.default.id, server.default.access_key_id, "x" * 40)
    with nothing_stored(iot):
        with expect_error("InvalidSignatureException", 403):
            server.iot(account=bad).create_thing(thingName="sneaky")
        rc, out, err = server.aws("list-things", env={**server.cli_env(), "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                                                    "AWS_ACCESS_KEY_ID": bad.access_key_id,
                                                    "AWS_SECRET_ACCESS_KEY": bad.secret_access_key})
        assert rc == 255 and "(InvalidSignatureException)" in err, err


def test_unknown_access_key(server, iot):
    ghost = Account("ghost", "", "AKIAGHOSTGHOSTGHOST0", "y" * 40)
    with nothing_stored(iot):
        with expect_error("UnrecognizedClientException", 403):
            server.iot(account=ghost).create_thing(thingName="sneaky")
        rc, out, err = server.aws("list-things", env={**server.cli_env(), "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                                                    "AWS_ACCESS_KEY_ID": ghost.access_key_id,
                                                    "AWS_SECRET_ACCESS_KEY": ghost.secret_access_key})
        assert rc == 255 and "(UnrecognizedClientException)" in err, err


@pytest.mark.parametrize("case,code", [("unknown-key", "InvalidClientTokenId"),
                                       ("wrong-secret", "SignatureDoesNotMatch")])
def test_sts_auth_errors_are_xml(server, case, code):
    if case == "unknown-key":
        acct = Account("ghost", "", "AKIAGHOSTGHOSTGHOST0", "y" * 40)
    else:
        acct = Account("bad", server.default.id, server.default.access_key_id, "x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client("sts", account=acct).get_caller_identity()
    assert e.value.response["Error"]["Code"] == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_request(server, iot):
    """A valid signature for one request does not authorise another."""
    headers = signed_headers(server, "POST", "/things/alpha", b"{}")
    with nothing_stored(iot):
        status, _, hdrs = raw(server, "POST", "/things/beta", b"{}", headers)
        assert status == 403 and error_code(hdrs) == "InvalidSignatureException"
        status, _, hdrs = raw(server, "POST", "/things/alpha", b'{"attributePayload":{"attributes":{"a":"b"}}}',
                              headers)
        assert status == 403 and error_code(hdrs) == "InvalidSignatureException"


@pytest.mark.parametrize("minutes", [-20, 20])
def test_signature_outside_clock_skew(server, iot, minutes):
    when = utcnow() + datetime.timedelta(minutes=minutes)
    headers = signed_headers(server, "POST", "/things/late", b"{}", when=when)
    with nothing_stored(iot):
        status, body, hdrs = raw(server, "POST", "/things/late", b"{}", headers)
    assert status == 403 and error_code(hdrs) == "InvalidSignatureException", (status, body, hdrs)
    if minutes < 0:
        assert "Signature expired" in body["message"]


def test_signature_within_clock_skew(server, iot):
    when = utcnow() - datetime.timedelta(minutes=10)
    headers = signed_headers(server, "POST", "/things/ok-late", b"{}", when=when)
    status, body, hdrs = raw(server, "POST", "/things/ok-late", b"{}", headers)
    assert status == 200, (status, body)
    assert body["thingName"] == "ok-late"


def test_execute_api_signing_name_accepted(server, iot):
    """Debian's awscli 2.9.19 signs IoT requests as `execute-api`."""
    headers = signed_headers(server, "POST", "/things/from-debian-cli", b"{}", service="execute-api")
    status, body, _ = raw(server, "POST", "/things/from-debian-cli", b"{}", headers)
    assert status == 200 and body["thingName"] == "from-debian-cli"
    headers = signed_headers(server, "GET", "/things/from-debian-cli", service="execute-api")
    status, body, _ = raw(server, "GET", "/things/from-debian-cli", headers=headers)
    assert status == 200 and body["defaultClientId"] == "from-debian-cli"
    # some other service name is not
    headers = signed_headers(server, "GET", "/things", service="s3")
    status, _, hdrs = raw(server, "GET", "/things", headers=headers)
    assert status == 403 and error_code(hdrs) == "InvalidSignatureException"


def test_double_encoded_path(server, iot):
    """SigV4 for non-S3 services signs the already-encoded path encoded again; ':' travels as %3A."""
    headers = signed_headers(server, "POST", "/things/a%3Ab", b"{}")
    status, body, _ = raw(server, "POST", "/things/a%3Ab", b"{}", headers)
    assert status == 200 and body["thingName"] == "a:b"
    assert iot.describe_thing(thingName="a:b")["thingName"] == "a:b"


def test_oversized_body(server, iot):
    big = json.dumps({"policyDocument": "x" * (2 * 1024 * 1024)}).encode()
    headers = signed_headers(server, "POST", "/policies/huge", big)
    with nothing_stored(iot):
        conn = http.client.HTTPConnection("127.0.0.1", server.api_port, timeout=30)
        try:
            conn.request("POST", "/policies/huge", body=big, headers=headers)
            resp = conn.getresponse()
            status, hdrs, data = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()
        assert status == 400, (status, data[:200])
        assert error_code(hdrs) == "InvalidRequestException"
        assert json.loads(data)["message"]


@pytest.fixture
def acct1_resources(server, iot, tmp_path):
    iot.create_thing(thingName="secret-thing")
    cert = iot.create_keys_and_certificate(setAsActive=False)
    iot.create_policy(policyName="secret-policy", policyDocument=POLICY)
    ca = register_ca(iot, tmp_path / "ca", set_as_active=False)
    iot.create_thing_group(thingGroupName="secret-group")
    return {"cert": cert, "ca": ca}


def test_other_account_cannot_see_or_change(server, iot, iot2, account2, acct1_resources):
    cid = acct1_resources["cert"]["certificateId"]
    ca_id = acct1_resources["ca"].id
    with nothing_stored(iot, iot2):
        calls = [
            lambda: iot2.describe_thing(thingName="secret-thing"),
            lambda: iot2.update_thing(thingName="secret-thing", attributePayload={"attributes": {"x": "1"}}),
            lambda: iot2.describe_certificate(certificateId=cid),
            lambda: iot2.update_certificate(certificateId=cid, newStatus="ACTIVE"),
            lambda: iot2.delete_certificate(certificateId=cid),
            lambda: iot2.transfer_certificate(certificateId=cid, targetAwsAccount=server.default.id),
            lambda: iot2.describe_ca_certificate(certificateId=ca_id),
            lambda: iot2.update_ca_certificate(certificateId=ca_id, newStatus="ACTIVE"),
            lambda: iot2.delete_ca_certificate(certificateId=ca_id),
            lambda: iot2.get_policy(policyName="secret-policy"),
            lambda: iot2.create_policy_version(policyName="secret-policy", policyDocument=POLICY),
            lambda: iot2.delete_policy(policyName="secret-policy"),
            lambda: iot2.describe_thing_group(thingGroupName="secret-group"),
            lambda: iot2.list_thing_principals(thingName="secret-thing"),
        ]
        for call in calls:
            with expect_error("ResourceNotFoundException", 404):
                call()
        # deleting "their" thing just deletes nothing in account 2
        iot2.delete_thing(thingName="secret-thing")
    assert iot2.list_things()["things"] == []
    assert iot2.list_certificates()["certificates"] == []
    assert iot2.list_policies()["policies"] == []
    assert iot2.list_ca_certificates()["certificates"] == []
    assert iot.describe_thing(thingName="secret-thing")["thingName"] == "secret-thing"


def test_other_account_cannot_attach_my_certificate(server, iot, iot2, acct1_resources):
    arn = acct1_resources["cert"]["certificateArn"]
    iot2.create_thing(thingName="mine")
    iot2.create_policy(policyName="mine", policyDocument=POLICY)
    with nothing_stored(iot, iot2):
        with expect_error("UnauthorizedException", 401):
            iot2.attach_thing_principal(thingName="mine", principal=arn)
        with expect_error("UnauthorizedException", 401):
            iot2.attach_policy(policyName="mine", target=arn)
        with expect_error("UnauthorizedException", 401):
            iot2.attach_principal_policy(policyName="mine", principal=arn)
        rc, out, err = server.aws("attach-thing-principal", "--thing-name", "mine", "--principal", arn,
                                  account=server.account("second"))
        assert rc == 255 and "(UnauthorizedException)" in err, err


def test_other_account_cannot_register_device_cert_under_my_ca(server, iot, iot2, tmp_path):
    ca = register_ca(iot, tmp_path / "ca")
    pem = make_device_cert(ca, "dev").read_text()
    with nothing_stored(iot, iot2):
        with expect_error("CertificateValidationException", 400):
            iot2.register_certificate(certificatePem=pem, setAsActive=True)


def test_other_account_cannot_list_or_detach_through_my_arns(server, iot, iot2, acct1_resources):
    arn = acct1_resources["cert"]["certificateArn"]
    group_arn = f"arn:aws:iot:us-east-1:{server.default.id}:thinggroup/secret-group"
    iot.attach_policy(policyName="secret-policy", target=arn)
    iot.attach_thing_principal(thingName="secret-thing", principal=arn)
    iot2.create_thing(thingName="mine")
    iot2.create_policy(policyName="mine", policyDocument=POLICY)
    iot2.create_thing_group(thingGroupName="mine")
    with nothing_stored(iot, iot2):
        for call in (lambda: iot2.list_attached_policies(target=arn),
                     lambda: iot2.list_principal_things(principal=arn),
                     lambda: iot2.list_principal_things_v2(principal=arn),
                     lambda: iot2.list_principal_policies(principal=arn),
                     lambda: iot2.get_effective_policies(principal=arn),
                     lambda: iot2.detach_policy(policyName="mine", target=arn),
                     lambda: iot2.detach_thing_principal(thingName="mine", principal=arn),
                     lambda: iot2.attach_policy(policyName="mine", target=group_arn),
                     lambda: iot2.list_attached_policies(target=group_arn)):
            with expect_error("UnauthorizedException", 401):
                call()
        # membership by another account's ARN is refused too
        for kw in ({"thingGroupName": "mine",
                    "thingArn": f"arn:aws:iot:us-east-1:{server.default.id}:thing/secret-thing"},
                   {"thingGroupArn": group_arn, "thingName": "mine"}):
            with pytest.raises(botocore.exceptions.ClientError) as e:
                iot2.add_thing_to_thing_group(**kw)
            assert e.value.response["Error"]["Code"] in ("UnauthorizedException", "InvalidRequestException",
                                                         "ResourceNotFoundException")


def test_every_error_carries_code_and_message(server):
    """restJson errors: x-amzn-ErrorType header and a JSON {"message"} body, even for unknown routes."""
    for method, path in (("GET", "/no/such/route"), ("PUT", "/nothing/here")):
        headers = signed_headers(server, method, path, b"{}" if method == "PUT" else b"")
        status, body, hdrs = raw(server, method, path, b"{}" if method == "PUT" else b"", headers)
        assert status >= 400 and error_code(hdrs), (method, path, status, hdrs)
        assert body and body.get("message"), (method, path, body)


def test_unsupported_method_carries_code_and_message(server):
    headers = signed_headers(server, "DELETE", "/endpoint")
    status, body, hdrs = raw(server, "DELETE", "/endpoint", headers=headers)
    assert status >= 400 and error_code(hdrs), (status, hdrs)
    assert body and body.get("message")


def test_sigv4_with_names_and_queries_that_need_encoding(server, iot):
    """Path labels and query values with reserved characters must be canonicalised like botocore does."""
    name = "a+b=c,d.e@f-g_h"
    assert iot.create_policy(policyName=name, policyDocument=POLICY)["policyName"] == name
    assert iot.get_policy(policyName=name)["policyName"] == name
    value = "x=1,[y]/z#@:"
    iot.create_thing(thingName="enc:thing", attributePayload={"attributes": {"k": value}})
    assert [t["thingName"] for t in iot.list_things(attributeName="k", attributeValue=value)["things"]] == \
        ["enc:thing"]
    cognito = "us-east-1:12345678-1234-1234-1234-123456789012"
    iot.attach_policy(policyName=name, target=cognito)
    assert iot.list_attached_policies(target=cognito)["policies"][0]["policyName"] == name
    iot.detach_policy(policyName=name, target=cognito)
    iot.delete_policy(policyName=name)
