"""Operability: HTTPS listener, /metrics, /health, the CLI surface of the binary, file modes."""

import json
import re
import ssl
import stat

import pytest

from conftest import ONBOARD_BIN, clean_env
from helpers import run


def test_https_listener_with_ca_bundle(server):
    root = server.data_dir / "ca" / "root-ca.pem"
    rc, out, err = server.aws("create-thing", "--thing-name", "over-tls", "--endpoint-url", server.tls_url,
                              "--ca-bundle", str(root))
    assert rc == 0, err
    assert out["thingName"] == "over-tls"
    # the name in the certificate works too
    rc, out, err = server.aws("describe-thing", "--thing-name", "over-tls", "--endpoint-url",
                              f"https://localhost:{server.tls_port}", "--ca-bundle", str(root))
    assert rc == 0, err
    # AWS_CA_BUNDLE is honoured as well
    env = {**server.cli_env(), "AWS_CA_BUNDLE": str(root)}
    rc, out, err = server.aws("list-things", "--endpoint-url", server.tls_url, env=env)
    assert rc == 0, err
    assert [t["thingName"] for t in out["things"]] == ["over-tls"]
    # boto3 too
    iot = server.client("iot", endpoint_url=server.tls_url, verify=str(root))
    assert iot.describe_thing(thingName="over-tls")["thingName"] == "over-tls"


def test_https_listener_fails_verification_without_ca_bundle(server):
    rc, out, err = server.aws("list-things", "--endpoint-url", server.tls_url)
    assert rc != 0 and out is None
    assert "SSL validation failed" in err or "CERTIFICATE_VERIFY_FAILED" in err, err
    # and the served chain does verify against the trust anchor with plain Python ssl
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "ca" / "root-ca.pem"))
    status, body, _ = server.http("GET", "/health", base=server.tls_url, context=ctx)
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_health(server):
    status, body, headers = server.http("GET", "/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        m = re.match(r"^(\w+)\{(.*)\}\s+(\S+)", line)
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def test_metrics(server, iot):
    def scrape():
        status, body, headers = server.http("GET", "/metrics")
        assert status == 200
        return body.decode()

    before = scrape()
    iot.create_thing(thingName="m")
    for _ in range(3):
        with pytest.raises(Exception):
            iot.describe_thing(thingName="missing")
    after = scrape()
    assert "# TYPE onboard_api_requests counter" in after
    name = "onboard_api_requests_total"
    assert metric(after, name, operation="CreateThing", code="OK") - \
        metric(before, name, operation="CreateThing", code="OK") == 1
    assert metric(after, name, operation="DescribeThing", code="ResourceNotFoundException") - \
        metric(before, name, operation="DescribeThing", code="ResourceNotFoundException") == 3
    assert metric(after, "onboard_api_request_duration_seconds_count", operation="DescribeThing") >= 3


def test_version_and_help():
    env = clean_env()
    out = run([ONBOARD_BIN, "--version"], env=env)
    assert re.match(r"onboard \d+\.\d+\.\d+", out.stdout.strip()), out.stdout
    for args in (["--help"], ["serve", "--help"], ["account", "--help"], ["account", "create", "--help"],
                 ["account", "list", "--help"]):
        proc = run([ONBOARD_BIN, *args], env=env)
        assert "Usage" in proc.stdout, args
    help_text = run([ONBOARD_BIN, "serve", "--help"], env=env).stdout
    for flag in ("--config", "--data-dir", "--api-listen", "--api-tls-listen", "--mqtt-listen", "--region",
                 "--domain", "--dev"):
        assert flag in help_text, flag


def test_usage_errors(server):
    env = clean_env()
    proc = run([ONBOARD_BIN, "serve", "--no-such-flag"], env=env, check=False)
    assert proc.returncode == 2
    for bad in ("12345", "abcdefghijkl", "1234567890123"):
        proc = run([ONBOARD_BIN, "account", "create", "--name", f"bad-{bad}", "--account-id", bad,
                    "--data-dir", server.data_dir, "--json"], env=env, check=False)
        assert proc.returncode in (1, 2), (bad, proc.returncode)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert "account" in lines[0].lower()
        assert proc.stdout == ""
    # nothing was created
    listed = json.loads(run([ONBOARD_BIN, "account", "list", "--data-dir", server.data_dir, "--json"],
                            env=env).stdout)
    assert not any(a.get("name", "").startswith("bad-") for a in listed)


def test_account_create_with_given_credentials(server, tmp_path):
    acct = server.create_account("imported", account_id="123456789012", access_key_id="AKIAIMPORTED00000001",
                                 secret_access_key="imported/secret+key0000000000000000000000")
    assert acct.id == "123456789012" and acct.access_key_id == "AKIAIMPORTED00000001"
    ident = server.client("sts", account=acct).get_caller_identity()
    assert ident["Account"] == "123456789012"
    # the running server honours it at once, and it has its own registry
    iot = server.iot(account=acct)
    assert iot.list_things()["things"] == []
    assert iot.create_thing(thingName="x")["thingArn"] == "arn:aws:iot:us-east-1:123456789012:thing/x"
    # duplicate account id / name refused with one line on stderr
    proc = server.onboard("account", "create", "--name", "imported-again", "--account-id", "123456789012",
                          "--data-dir", str(server.data_dir), check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    listed = json.loads(server.onboard("account", "list", "--data-dir", str(server.data_dir), "--json").stdout)
    ids = [a.get("accountId") for a in listed]
    assert "123456789012" in ids and server.default.id in ids


def test_secret_files_are_0600(server):
    d = server.data_dir
    keys = sorted((d / "ca").glob("*.key"))
    assert keys, "no key files under DIR/ca"
    for path in [*keys, d / "credentials", d / "onboard.db"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path} has mode {oct(mode)}"
    assert "PRIVATE KEY" in keys[0].read_text()
