"""Shared helpers for the interop suite: openssl-driven PKI, error assertions, registry snapshots.

Everything cryptographic is done with the `openssl` command line (the tool users have), never with a Python crypto
library, so the certificates the server sees are the ones a user would make.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import botocore.exceptions

SUBPROCESS_TIMEOUT = 60


# ---------------------------------------------------------------------------------------------------------------------
# processes


def run(cmd, *, cwd=None, input=None, env=None, timeout=SUBPROCESS_TIMEOUT, check=True):
    """Run a command with a timeout; raise with its stderr when it fails and check is set."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        input=input,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def openssl(*args, cwd=None, input=None):
    return run(["openssl", *args], cwd=cwd, input=input)


# ---------------------------------------------------------------------------------------------------------------------
# certificates


def pem_to_der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.strip() + "\n")


def cert_id(pem: str) -> str:
    """AWS's certificateId: lowercase hex SHA-256 of the certificate's DER."""
    return hashlib.sha256(pem_to_der(pem)).hexdigest()


def cert_id_openssl(path: Path) -> str:
    """The same, computed with `openssl x509 -outform DER` as a user would."""
    der = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-outform", "DER"],
        capture_output=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=True,
    ).stdout
    return hashlib.sha256(der).hexdigest()


def cert_pubkey(pem_path: Path) -> str:
    return openssl("x509", "-in", pem_path, "-noout", "-pubkey").stdout.strip()


def csr_pubkey(csr_path: Path) -> str:
    return openssl("req", "-in", csr_path, "-noout", "-pubkey").stdout.strip()


def key_pubkey(key_path: Path, public: bool = False) -> str:
    """The SubjectPublicKeyInfo PEM of a private key file (or of a public key file with public=True)."""
    return openssl("pkey", *(["-pubin"] if public else []), "-in", key_path, "-pubout").stdout.strip()


def cert_field(pem_path: Path, *flags: str) -> str:
    return openssl("x509", "-in", pem_path, "-noout", *flags).stdout.strip()


def x509_text(pem_path: Path) -> str:
    return openssl("x509", "-in", pem_path, "-noout", "-text").stdout


def subject_rfc2253(path: Path, kind: str = "x509") -> str:
    return openssl(kind, "-in", path, "-noout", "-subject", "-nameopt", "RFC2253").stdout.strip().split("=", 1)[1]


@dataclass
class CA:
    """A CA made exactly like seed 002 does it (genrsa 2048, CA:TRUE extension, `x509 -req -signkey`)."""

    dir: Path
    key: Path
    pem: Path

    @property
    def pem_text(self) -> str:
        return self.pem.read_text()

    @property
    def id(self) -> str:
        return cert_id(self.pem_text)


def make_root_ca(dir: Path, cn: str = "Interop Test Root CA") -> CA:
    """Seed 002's commands, with -subj instead of the interactive prompts."""
    dir.mkdir(parents=True, exist_ok=True)
    openssl("genrsa", "-out", "rootCA.key", "2048", cwd=dir)
    (dir / "rootCA_openssl.conf").write_text("[ v3_ca ]\nbasicConstraints = CA:TRUE\n")
    openssl("req", "-new", "-sha256", "-key", "rootCA.key", "-nodes", "-out", "rootCA.csr", "-subj", f"/CN={cn}",
            cwd=dir)
    openssl("x509", "-req", "-days", "1024", "-extfile", "rootCA_openssl.conf", "-extensions", "v3_ca",
            "-in", "rootCA.csr", "-signkey", "rootCA.key", "-out", "rootCA.pem", cwd=dir)
    return CA(dir, dir / "rootCA.key", dir / "rootCA.pem")


def make_verification_cert(ca: CA, registration_code: str, name: str = "verificationCert",
                           signer: CA | None = None, cn: str | None = None) -> Path:
    """Seed 002's verification certificate: CN = registration code, signed by the CA's key.

    signer/cn let a test forge a bad one (signed by another CA's key, or with a wrong CN)."""
    d = ca.dir
    signer = signer or ca
    openssl("genrsa", "-out", f"{name}.key", "2048", cwd=d)
    openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn or registration_code}",
            cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", signer.pem, "-CAkey", signer.key, "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "500", "-sha256", cwd=d)
    return d / f"{name}.pem"


def make_key(dir: Path, name: str, kind: str = "rsa2048") -> Path:
    path = dir / f"{name}.key"
    if kind.startswith("rsa"):
        bits = kind[3:]
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out", path)
    elif kind in ("p256", "p384"):
        curve = {"p256": "P-256", "p384": "P-384"}[kind]
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}", "-out", path)
    else:
        raise ValueError(kind)
    return path


def make_csr(dir: Path, name: str, kind: str = "rsa2048", subj: str | None = None) -> tuple[Path, Path]:
    dir.mkdir(parents=True, exist_ok=True)
    key = make_key(dir, name, kind)
    csr = dir / f"{name}.csr"
    openssl("req", "-new", "-key", key, "-out", csr, "-subj", subj or f"/C=JP/O=Interop/CN={name}")
    return key, csr


def make_device_cert(ca: CA, name: str, kind: str = "rsa2048", days: int = 365) -> Path:
    """A leaf certificate signed by `ca` (as a device vendor would make one)."""
    key, csr = make_csr(ca.dir, name, kind, subj=f"/CN={name}")
    pem = ca.dir / f"{name}.pem"
    openssl("x509", "-req", "-in", csr, "-CA", ca.pem, "-CAkey", ca.key, "-CAcreateserial", "-out", pem,
            "-days", str(days), "-sha256")
    return pem


def make_self_signed_leaf(dir: Path, name: str) -> Path:
    dir.mkdir(parents=True, exist_ok=True)
    key = make_key(dir, name, "p256")
    pem = dir / f"{name}.pem"
    openssl("req", "-new", "-x509", "-key", key, "-out", pem, "-days", "30", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:FALSE")
    return pem


def der_to_pem(der: bytes, label: str) -> str:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def pem_body(pem: str) -> bytes:
    m = re.search(r"-----BEGIN [A-Z ]+-----(.*?)-----END", pem, re.S)
    assert m, "not a PEM"
    return base64.b64decode("".join(m.group(1).split()))


# ---------------------------------------------------------------------------------------------------------------------
# errors


@contextlib.contextmanager
def expect_error(code: str, status: int | None = None, message_contains: str | None = None):
    """Assert that the block raises a botocore ClientError with this AWS error code (and HTTP status)."""
    holder = {}
    try:
        yield holder
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        got = err.get("Code")
        assert got == code, f"expected {code}, got {got} (HTTP {meta.get('HTTPStatusCode')}): {err.get('Message')}"
        if status is not None:
            assert meta.get("HTTPStatusCode") == status, (
                f"{code}: expected HTTP {status}, got {meta.get('HTTPStatusCode')}")
        header = meta.get("HTTPHeaders", {}).get("x-amzn-errortype", "")
        assert header.split(":")[0] == code, f"x-amzn-ErrorType header is {header!r}, expected {code}"
        msg = err.get("Message") or ""
        assert msg.strip(), f"{code} came without a message"
        if message_contains is not None:
            assert message_contains.lower() in msg.lower(), f"message {msg!r} lacks {message_contains!r}"
        holder["error"] = err
        holder["response"] = e.response
        return
    raise AssertionError(f"expected {code}, but the call succeeded")


# ---------------------------------------------------------------------------------------------------------------------
# snapshots ("nothing was stored")


def _all(paginate_fn, key, **kw):
    out = []
    token_name = None
    resp = paginate_fn(**kw)
    while True:
        out.extend(resp.get(key, []))
        if resp.get("nextToken"):
            token_name, tok = "nextToken", resp["nextToken"]
        elif resp.get("nextMarker"):
            token_name, tok = "marker", resp["nextMarker"]
        else:
            return out
        resp = paginate_fn(**kw, **{token_name: tok})


def snapshot(iot) -> dict:
    """Everything a bad request could have left behind in one account and region."""
    things = _all(iot.list_things, "things")
    certs = _all(iot.list_certificates, "certificates")
    cas = _all(iot.list_ca_certificates, "certificates")
    policies = _all(iot.list_policies, "policies")
    snap = {
        "things": sorted((t["thingName"], t.get("version"), json.dumps(t.get("attributes", {}), sort_keys=True),
                          t.get("thingTypeName")) for t in things),
        "certificates": sorted((c["certificateId"], c["status"]) for c in certs),
        "ca_certificates": sorted((c["certificateId"], c["status"]) for c in cas),
        "policies": sorted(p["policyName"] for p in policies),
        "thing_types": sorted(t["thingTypeName"] for t in _all(iot.list_thing_types, "thingTypes")),
        "thing_groups": sorted(g["groupName"] for g in _all(iot.list_thing_groups, "thingGroups")),
        "outgoing": sorted(c["certificateId"] for c in _all(iot.list_outgoing_certificates, "outgoingCertificates")),
        "policy_targets": {},
        "policy_versions": {},
        "thing_principals": {},
    }
    for p in snap["policies"]:
        snap["policy_targets"][p] = sorted(_all(iot.list_targets_for_policy, "targets", policyName=p))
        snap["policy_versions"][p] = sorted(
            (v["versionId"], v["isDefaultVersion"]) for v in iot.list_policy_versions(policyName=p)["policyVersions"])
    for t in things:
        name = t["thingName"]
        snap["thing_principals"][name] = sorted(_all(iot.list_thing_principals, "principals", thingName=name))
    return snap


@contextlib.contextmanager
def nothing_stored(*clients):
    """Assert that the block leaves every given client's account/region exactly as it found it."""
    before = [snapshot(c) for c in clients]
    yield
    after = [snapshot(c) for c in clients]
    for b, a in zip(before, after):
        assert a == b, f"state changed:\nbefore={b}\nafter={a}"


def register_ca(iot, dir: Path, mode: str = "DEFAULT", set_as_active: bool = True, auto: bool = False,
                cn: str = "Interop Test Root CA") -> CA:
    """Make a CA with openssl and register it in the client's account/region (proof of possession for DEFAULT)."""
    ca = make_root_ca(dir, cn)
    kw = {"caCertificate": ca.pem_text, "setAsActive": set_as_active, "allowAutoRegistration": auto,
          "certificateMode": mode}
    if mode == "DEFAULT":
        code = iot.get_registration_code()["registrationCode"]
        kw["verificationCertificate"] = make_verification_cert(ca, code).read_text()
    resp = iot.register_ca_certificate(**kw)
    assert resp["certificateId"] == ca.id
    return ca
