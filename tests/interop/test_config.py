"""Configuration layers of `onboard serve`: flags win over ONBOARD_* environment variables, which win over the TOML
file, which wins over the defaults; JSON logs; bad configuration is one clear line and exit 1."""

import json
import socket
import subprocess
import time
import urllib.request

from conftest import ONBOARD_BIN, clean_env, free_port


def _serve(args, env):
    """Starts `onboard serve` with its output captured."""
    return subprocess.Popen([ONBOARD_BIN, "serve", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_health(port, proc, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                return json.load(r)
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"no /health on port {port}")


def _stop(proc):
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out, err


def test_flags_beat_environment_beat_file(tmp_path):
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    config = tmp_path / "onboard.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'api_listen = "127.0.0.1:{file_port}"\n'
        f'mqtt_listen = "127.0.0.1:{free_port()}"\n'
        'region = "eu-west-1"\n'
    )
    # The file alone decides the API port and the region of the generated client config.
    proc = _serve(["--config", str(config)], clean_env())
    try:
        assert _wait_health(file_port, proc) == {"status": "ok"}
    finally:
        _stop(proc)
    aws_config = (tmp_path / "data" / "aws-config").read_text()
    assert "region = eu-west-1" in aws_config and f"127.0.0.1:{file_port}" in aws_config

    # The environment beats the file.
    proc = _serve(["--config", str(config)], clean_env({"ONBOARD_API_LISTEN": f"127.0.0.1:{env_port}"}))
    try:
        _wait_health(env_port, proc)
    finally:
        _stop(proc)

    # A flag beats both.
    proc = _serve(["--config", str(config), "--api-listen", f"127.0.0.1:{flag_port}"],
                  clean_env({"ONBOARD_API_LISTEN": f"127.0.0.1:{env_port}"}))
    try:
        _wait_health(flag_port, proc)
    finally:
        _stop(proc)


def test_json_logs(tmp_path):
    port = free_port()
    proc = _serve(["--data-dir", str(tmp_path / "d"), "--api-listen", f"127.0.0.1:{port}",
                   "--mqtt-listen", f"127.0.0.1:{free_port()}", "--log-format", "json"], clean_env())
    try:
        _wait_health(port, proc)
    finally:
        _, err = _stop(proc)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    for line in lines:
        record = json.loads(line)
        assert "level" in record and "fields" in record


def test_bad_configuration_is_one_line_and_exit_1(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('api_listen = "not an address"\n')
    result = subprocess.run([ONBOARD_BIN, "serve", "--config", str(config)], env=clean_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "api_listen" in result.stderr

    unknown = tmp_path / "unknown.toml"
    unknown.write_text('no_such_setting = 1\n')
    result = subprocess.run([ONBOARD_BIN, "serve", "--config", str(unknown)], env=clean_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "no_such_setting" in result.stderr

    busy = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", busy))
        s.listen()
        result = subprocess.run([ONBOARD_BIN, "serve", "--data-dir", str(tmp_path / "d"), "--api-listen",
                                 f"127.0.0.1:{busy}", "--mqtt-listen", f"127.0.0.1:{free_port()}"],
                                env=clean_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"127.0.0.1:{busy}" in result.stderr.splitlines()[-1]
