"""Done-when #1: with only the two environment variables from the banner, the AWS CLI v1 walkthrough works and prints
what AWS would."""

import json
import re

from helpers import cert_id, cert_id_openssl, cert_pubkey, key_pubkey, x509_text

# 2049-12-31T23:59:59Z, the notAfter of every AWS-issued certificate
AWS_NOT_AFTER = 2524607999


def banner_env(server) -> dict:
    """The environment a user gets by pasting the banner's `export` line into a clean shell."""
    m = re.search(r"export (AWS_SHARED_CREDENTIALS_FILE=\S+) (AWS_CONFIG_FILE=\S+)", server.banner)
    assert m, f"banner has no export line:\n{server.banner}"
    from conftest import clean_env  # the CLI must not see anything else pointing elsewhere

    env = clean_env(home=server.work_dir)
    for assignment in m.groups():
        k, v = assignment.split("=", 1)
        env[k] = v
    env["AWS_PAGER"] = ""  # CLI v1 has no pager anyway; keeps output deterministic
    return env


def test_banner_names_the_files_and_the_account(server):
    b = server.banner
    assert f"AWS_SHARED_CREDENTIALS_FILE={server.data_dir / 'credentials'}" in b
    assert f"AWS_CONFIG_FILE={server.data_dir / 'aws-config'}" in b
    assert "aws iot list-things" in b
    assert server.default.id in b
    assert (server.data_dir / "ca" / "root-ca.pem").exists()
    cfg = (server.data_dir / "aws-config").read_text()
    assert "region = us-east-1" in cfg
    assert f"endpoint_url = {server.api_url}" in cfg


def test_cli_walkthrough_with_banner_env(server, tmp_path):
    env = banner_env(server)
    acct = server.default.id

    def aws(*args, service="iot"):
        return server.aws(*args, service=service, env=env, cwd=tmp_path)

    rc, who, err = aws("get-caller-identity", service="sts")
    assert rc == 0, err
    assert who["Account"] == acct and re.fullmatch(r"\d{12}", acct)
    assert who["Arn"].startswith(f"arn:aws:iam::{acct}:")

    rc, out, err = aws("create-thing", "--thing-name", "MyIotThing")
    assert rc == 0, err
    assert out["thingName"] == "MyIotThing"
    assert out["thingArn"] == f"arn:aws:iot:us-east-1:{acct}:thing/MyIotThing"
    assert out["thingId"]

    rc, kc, err = aws("create-keys-and-certificate", "--set-as-active")
    assert rc == 0, err
    assert set(kc) == {"certificateArn", "certificateId", "certificatePem", "keyPair"}
    assert set(kc["keyPair"]) == {"PublicKey", "PrivateKey"}
    cert_file = tmp_path / "device.pem.crt"
    key_file = tmp_path / "private.pem.key"
    cert_file.write_text(kc["certificatePem"])
    key_file.write_text(kc["keyPair"]["PrivateKey"])
    (tmp_path / "public.pem.key").write_text(kc["keyPair"]["PublicKey"])
    cid = kc["certificateId"]
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert cid == cert_id(kc["certificatePem"]) == cert_id_openssl(cert_file)
    assert kc["certificateArn"] == f"arn:aws:iot:us-east-1:{acct}:cert/{cid}"
    assert kc["keyPair"]["PrivateKey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert kc["keyPair"]["PublicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    # the key pair belongs to the certificate
    assert key_pubkey(key_file) == cert_pubkey(cert_file) == key_pubkey(tmp_path / "public.pem.key", public=True)
    text = x509_text(cert_file)
    assert "Public-Key: (2048 bit)" in text and "rsaEncryption" in text
    assert "Subject: CN = AWS IoT Certificate" in text
    assert "Not After : Dec 31 23:59:59 2049 GMT" in text

    rc, out, err = aws("attach-thing-principal", "--thing-name", "MyIotThing", "--principal", kc["certificateArn"])
    assert (rc, out) == (0, None), err  # empty response: CLI v1 prints nothing

    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"arn:aws:iot:us-east-1:{acct}:client/MyIotThing"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": f"arn:aws:iot:us-east-1:{acct}:topic/sdk/test/*"}]}
    (tmp_path / "policy.json").write_text(json.dumps(doc, indent=2))
    rc, pol, err = aws("create-policy", "--policy-name", "MyIotPolicy", "--policy-document", "file://policy.json")
    assert rc == 0, err
    assert pol["policyName"] == "MyIotPolicy"
    assert pol["policyArn"] == f"arn:aws:iot:us-east-1:{acct}:policy/MyIotPolicy"
    assert pol["policyVersionId"] == "1"
    assert json.loads(pol["policyDocument"]) == doc

    rc, out, err = aws("attach-policy", "--policy-name", "MyIotPolicy", "--target", kc["certificateArn"])
    assert (rc, out) == (0, None), err

    rc, desc, err = aws("describe-certificate", "--certificate-id", cid)
    assert rc == 0, err
    d = desc["certificateDescription"]
    assert d["certificateId"] == cid
    assert d["certificateArn"] == kc["certificateArn"]
    assert d["status"] == "ACTIVE"
    assert d["certificatePem"].strip() == kc["certificatePem"].strip()
    assert d["ownedBy"] == acct
    assert d["certificateMode"] == "DEFAULT"
    assert d["customerVersion"] == 1
    assert "caCertificateId" not in d or d["caCertificateId"] is None or re.fullmatch(r"[0-9a-f]{64}",
                                                                                       d["caCertificateId"])
    assert isinstance(d["creationDate"], (int, float))  # CLI v1 prints epoch seconds
    assert isinstance(d["lastModifiedDate"], (int, float))
    assert d["validity"]["notAfter"] == AWS_NOT_AFTER
    assert d["validity"]["notBefore"] <= d["creationDate"] + 1

    rc, things, err = aws("list-things")
    assert rc == 0, err
    assert things["things"] == [{"thingName": "MyIotThing",
                                 "thingArn": f"arn:aws:iot:us-east-1:{acct}:thing/MyIotThing",
                                 "attributes": {}, "version": 1}]

    rc, out, err = aws("list-thing-principals", "--thing-name", "MyIotThing")
    assert rc == 0, err
    assert out["principals"] == [kc["certificateArn"]]
    rc, out, err = aws("list-attached-policies", "--target", kc["certificateArn"])
    assert rc == 0, err
    assert out["policies"] == [{"policyName": "MyIotPolicy", "policyArn": pol["policyArn"]}]

    rc, ep, err = aws("describe-endpoint", "--endpoint-type", "iot:Data-ATS")
    assert rc == 0, err
    assert set(ep) == {"endpointAddress"}
    addr = ep["endpointAddress"]
    assert re.fullmatch(r"[a-z0-9]{13,14}-ats\.iot\.us-east-1\.localhost", addr), addr
    assert addr in server.banner
    # stable across calls
    assert aws("describe-endpoint", "--endpoint-type", "iot:Data-ATS")[1] == ep


def test_cli_prints_aws_errors(server, tmp_path):
    rc, out, err = server.aws("describe-thing", "--thing-name", "nope", env=banner_env(server))
    assert rc == 255 and out is None
    assert "An error occurred (ResourceNotFoundException) when calling the DescribeThing operation" in err
    rc, out, err = server.aws("create-thing", "--thing-name", "x", env=banner_env(server))
    assert rc == 0
    rc, out, err = server.aws("create-thing", "--thing-name", "x", "--attribute-payload",
                              '{"attributes":{"a":"b"}}', env=banner_env(server))
    assert rc == 255
    assert "An error occurred (ResourceAlreadyExistsException) when calling the CreateThing operation" in err


def test_cli_follows_both_pagination_styles(server, iot):
    for i in range(12):
        iot.create_thing(thingName=f"page-{i:02d}")
    rc, out, err = server.aws("list-things", "--page-size", "5")  # token style: 3 requests
    assert rc == 0, err
    assert sorted(t["thingName"] for t in out["things"]) == [f"page-{i:02d}" for i in range(12)]
    assert "nextToken" not in out

    # marker style: awscli v1 treats ListPolicies' own --page-size as a manual paging arg (and stops after one
    # page), so let the server's default page size split the listing instead
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}'
    for i in range(30):
        iot.create_policy(policyName=f"pol-{i:02d}", policyDocument=policy)
    rc, out, err = server.aws("list-policies", "--debug")
    assert rc == 0, err[-2000:]
    assert sorted(p["policyName"] for p in out["policies"]) == [f"pol-{i:02d}" for i in range(30)]
    assert "nextMarker" not in out
    requests = [line for line in err.splitlines() if '"GET /policies' in line]
    assert len(requests) >= 2, "the listing should have taken more than one page"
    assert any("marker=" in line for line in requests)

    rc, out, err = server.aws("list-things", "--max-items", "4")
    assert rc == 0, err
    assert len(out["things"]) == 4 and out.get("NextToken")
    rc, rest, err = server.aws("list-things", "--starting-token", out["NextToken"])
    assert rc == 0, err
    assert len(rest["things"]) == 8
    assert not {t["thingName"] for t in rest["things"]} & {t["thingName"] for t in out["things"]}
