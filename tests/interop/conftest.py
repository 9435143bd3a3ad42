"""Fixtures: the real `onboard` binary on free loopback ports, driven by the AWS CLI v1 and boto3.

The session-scoped `server` is shared by all tests; an autouse fixture wipes its registry (POST /_onboard/reset,
dev mode) before each test, so tests are independent. Accounts survive the reset, so extra accounts are created once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).parent))

from helpers import SUBPROCESS_TIMEOUT, run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ONBOARD_BIN = Path(os.environ.get("ONBOARD_BIN") or REPO / "target" / "debug" / "onboard")
_venv_aws = Path(sys.executable).parent / "aws"
AWS_BIN = _venv_aws if _venv_aws.exists() else Path(shutil.which("aws") or REPO / ".venv" / "bin" / "aws")
STARTUP_TIMEOUT = 60
HTTP_TIMEOUT = 30

# Variables that could make a client or the server talk to something other than the server under test.
_SCRUB_PREFIXES = ("AWS_", "ONBOARD_", "BOTO_")
_SCRUB_NAMES = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                "SSL_CERT_DIR", "CURL_CA_BUNDLE"}


def clean_env(extra: dict | None = None, home: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(_SCRUB_PREFIXES) and k.upper() not in _SCRUB_NAMES}
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra or {})
    return env


# The pytest process itself uses boto3: make sure nothing inherited redirects it.
for _k in list(os.environ):
    if _k.upper().startswith(("AWS_", "BOTO_")) or _k.upper() in _SCRUB_NAMES:
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Account:
    name: str
    id: str
    access_key_id: str
    secret_access_key: str
    endpoint_address: str | None = None


def _read_ini(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("[", "#", ";")):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


@dataclass
class Server:
    data_dir: Path
    work_dir: Path
    api_port: int
    mqtt_port: int
    tls_port: int | None = None
    alpn_port: int | None = None
    dev: bool = True
    proc: subprocess.Popen | None = None
    banner: str = ""
    default: Account | None = None
    _accounts: dict = field(default_factory=dict)
    _session: object = None

    # ---- lifecycle -----------------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def root_ca(self) -> Path:
        """The trust anchor of the MQTT server certificate (SANs localhost and 127.0.0.1)."""
        return self.data_dir / "ca" / "root-ca.pem"

    @property
    def stdout_path(self) -> Path:
        return self.work_dir / "server.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.work_dir / "server.stderr"

    def start(self):
        cmd = [str(ONBOARD_BIN), "serve", "--data-dir", str(self.data_dir),
               "--api-listen", f"127.0.0.1:{self.api_port}", "--mqtt-listen", f"127.0.0.1:{self.mqtt_port}"]
        if self.dev:
            cmd.append("--dev")
        if self.tls_port:
            cmd += ["--api-tls-listen", f"127.0.0.1:{self.tls_port}"]
        if self.alpn_port:
            cmd += ["--mqtt-alpn-listen", f"127.0.0.1:{self.alpn_port}"]
        env = clean_env({"RUST_LOG": "info", "NO_COLOR": "1"}, home=self.work_dir)
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.work_dir)
        try:
            self._wait_ready()
            self.default = self._default_account()
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def _wait_ready(self):
        """Read the banner (printed once the listeners are bound), then require /health to answer 200."""
        lines: list[str] = []
        done = threading.Event()

        def reader():
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                lines.append(line)
                with open(self.stdout_path, "a") as f:
                    f.write(line)
                if "aws iot list-things" in line:
                    done.set()
            done.set()

        threading.Thread(target=reader, daemon=True).start()
        if not done.wait(STARTUP_TIMEOUT) or self.proc.poll() is not None:
            raise RuntimeError(f"onboard did not start (exit {self.proc.poll()}):\n{''.join(lines)}\n{self.log_tail()}")
        self.banner = "".join(lines)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                status, body, _ = self.http("GET", "/health")
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"/health never answered 200\n{self.log_tail()}")
            time.sleep(0.05)  # bounded readiness poll, not synchronisation between test steps

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode if self.proc else None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    # ---- raw HTTP ------------------------------------------------------------------------------------------------

    def http(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             base: str | None = None, context=None):
        req = urllib.request.Request((base or self.api_url) + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT, context=context) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def reset(self):
        status, body, _ = self.http("POST", "/_onboard/reset")
        assert status == 200, f"reset failed: {status} {body!r}"

    # ---- accounts ------------------------------------------------------------------------------------------------

    def _default_account(self) -> Account:
        creds = _read_ini(self.data_dir / "credentials")
        ident = self.client("sts", account=Account("default", "", creds["aws_access_key_id"],
                                                     creds["aws_secret_access_key"])).get_caller_identity()
        return Account("default", ident["Account"], creds["aws_access_key_id"], creds["aws_secret_access_key"])

    def onboard(self, *args, check=True):
        return run([ONBOARD_BIN, *args], env=clean_env(home=self.work_dir), check=check)

    def create_account(self, name: str, **opts) -> Account:
        args = ["account", "create", "--name", name, "--data-dir", str(self.data_dir), "--json"]
        for k, v in opts.items():
            args += [f"--{k.replace('_', '-')}", v]
        out = json.loads(self.onboard(*args).stdout)
        acct = Account(name, out["accountId"], out["accessKeyId"], out["secretAccessKey"], out["endpointAddress"])
        self._accounts[name] = acct
        return acct

    def account(self, name: str) -> Account:
        """An extra account, created once per server (accounts survive /_onboard/reset)."""
        if name not in self._accounts:
            self.create_account(name)
        return self._accounts[name]

    # ---- clients -------------------------------------------------------------------------------------------------

    def client(self, service: str = "iot", account: Account | None = None, region: str = "us-east-1",
               validate: bool = True, endpoint_url: str | None = None, verify=None, **config):
        acct = account or self.default
        cfg = Config(parameter_validation=validate, retries={"total_max_attempts": 1, "mode": "standard"},
                     connect_timeout=10, read_timeout=HTTP_TIMEOUT, **config)
        if self._session is None:
            self._session = boto3.session.Session()  # one session: service models are loaded once
        return self._session.client(
            service, region_name=region, endpoint_url=endpoint_url or self.api_url, config=cfg, verify=verify,
            aws_access_key_id=acct.access_key_id, aws_secret_access_key=acct.secret_access_key)

    def iot(self, account: Account | None = None, region: str = "us-east-1", validate: bool = True):
        return self.client("iot", account=account, region=region, validate=validate)

    def cli_env(self, account: Account | None = None) -> dict:
        """Environment for the AWS CLI: the server's own credentials/config files, nothing inherited."""
        env = clean_env({
            "AWS_SHARED_CREDENTIALS_FILE": str(self.data_dir / "credentials"),
            "AWS_CONFIG_FILE": str(self.data_dir / "aws-config"),
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }, home=self.work_dir)
        if account is not None and account.name != "default":
            cred = self.work_dir / f"credentials-{account.name}"
            cred.write_text(f"[default]\naws_access_key_id = {account.access_key_id}\n"
                            f"aws_secret_access_key = {account.secret_access_key}\n")
            cred.chmod(0o600)
            env["AWS_SHARED_CREDENTIALS_FILE"] = str(cred)
        return env

    @property
    def env(self) -> dict:
        return self.cli_env()

    def aws(self, *args, service: str = "iot", account: Account | None = None, env: dict | None = None,
            cwd: Path | None = None):
        """Run `aws <service> ARGS --output json`; return (rc, parsed stdout or None, stderr)."""
        proc = run([AWS_BIN, service, *args, "--output", "json"], env=env or self.cli_env(account),
                   cwd=cwd or self.work_dir, check=False, timeout=SUBPROCESS_TIMEOUT)
        out = proc.stdout.strip()
        return proc.returncode, (json.loads(out) if out else None), proc.stderr


def start_server(tmp: Path, tls: bool = False, data_dir: Path | None = None, dev: bool = True,
                 api_port: int | None = None, mqtt_port: int | None = None,
                 alpn_port: int | None = None) -> Server:
    """Start the binary with the control plane, the MQTT listener and the ALPN (x-amzn-mqtt-ca) listener on free
    loopback ports (or the given ones, for restarts that must keep their addresses)."""
    tmp.mkdir(parents=True, exist_ok=True)
    srv = Server(data_dir=data_dir or tmp / "data", work_dir=tmp, api_port=api_port or free_port(),
                 mqtt_port=mqtt_port or free_port(), tls_port=free_port() if tls else None,
                 alpn_port=alpn_port or free_port(), dev=dev)
    srv.start()
    return srv


_servers: list[Server] = []


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    assert ONBOARD_BIN.exists(), f"{ONBOARD_BIN} not found: build with `cargo build -p onboard` or set ONBOARD_BIN"
    srv = start_server(tmp_path_factory.mktemp("onboard"), tls=True)
    _servers.append(srv)
    yield srv
    srv.stop()
    _servers.remove(srv)


@pytest.fixture
def spawn_server(tmp_path):
    """Start extra servers (own data dir) for tests that stop and restart one; stopped at the end."""
    started: list[Server] = []

    def spawn(name: str = "own", data_dir: Path | None = None, **kw) -> Server:
        srv = start_server(tmp_path / f"{name}-{len(started)}", data_dir=data_dir, **kw)
        started.append(srv)
        _servers.append(srv)
        return srv

    yield spawn
    for srv in started:
        srv.stop()
        _servers.remove(srv)


@pytest.fixture(autouse=True)
def _reset(server):
    server.reset()
    yield


@pytest.fixture
def iot(server):
    return server.iot()


@pytest.fixture
def account2(server):
    return server.account("second")


@pytest.fixture
def iot2(server, account2):
    return server.iot(account=account2)


@pytest.fixture
def aws(server):
    return server.aws


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _servers:
        for srv in _servers:
            rep.sections.append((f"onboard log tail ({srv.stderr_path})", srv.log_tail()))
