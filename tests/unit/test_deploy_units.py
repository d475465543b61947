"""The samples in deploy/ (docs/deploying.md): the systemd units pass ``systemd-analyze verify``
and keep the stop rules the worker needs, the nginx sample passes ``nginx -t`` and matches the
app's body limit, the environment file names only settings that exist.

The units name /opt/webhookapp; the checks run on copies pointed at this checkout and its
virtualenv (``systemd-analyze verify`` refuses an ``ExecStart`` program that does not exist).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from webhookapp.infra import config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
WEB = DEPLOY / "systemd" / "webhookapp-web.service"
WORKER = DEPLOY / "systemd" / "webhookapp-worker@.service"
ENV_FILE = DEPLOY / "webhookapp.env"
NGINX = DEPLOY / "nginx" / "webhookapp.conf"
INSTALLED = "/opt/webhookapp"


def settings(unit: Path) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, by key (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        match = re.match(r"([A-Za-z]+)=(.*)", line)
        if match:
            found.setdefault(match[1], []).append(match[2])
    return found


def local_copy(unit: Path, directory: Path, name: str) -> Path:
    """The unit with its programs and paths in this checkout, as ``name`` in ``directory``."""
    venv_bin = Path(sys.executable).parent
    text = unit.read_text()
    text = text.replace(f"{INSTALLED}/.venv/bin/python", sys.executable)
    text = text.replace(f"{INSTALLED}/.venv/bin/", f"{venv_bin}/")
    text = text.replace("/etc/webhookapp/webhookapp.env", str(ENV_FILE)).replace(INSTALLED, str(ROOT))
    copy = directory / name
    copy.write_text(text)
    return copy


def test_the_units_stop_with_sigterm_wait_long_enough_and_restart_on_failure():
    for unit in (WEB, WORKER):
        found = settings(unit)
        assert found["KillSignal"] == ["SIGTERM"]
        assert found["Restart"] == ["on-failure"]
        assert found["EnvironmentFile"] == ["/etc/webhookapp/webhookapp.env"]
        assert found["WorkingDirectory"] == [INSTALLED]  # gunicorn.conf.py, `python -m workers`
    worker = settings(WORKER)
    assert worker["ExecStart"] == [f"{INSTALLED}/.venv/bin/python -m workers"]
    # A stopping worker lets its sends end, each within the delivery timeout, then records them.
    grace = float(worker["TimeoutStopSec"][0])
    assert grace > config.Config.WEBHOOK_DELIVERY_TIMEOUT
    env_timeout = re.search(r"^WEBHOOK_DELIVERY_TIMEOUT=(\d+)$", ENV_FILE.read_text(), re.MULTILINE)
    assert env_timeout is not None and grace > float(env_timeout[1])
    # gunicorn stops its own workers after --graceful-timeout: systemd waits longer than that.
    web = settings(WEB)
    graceful = re.search(r"--graceful-timeout (\d+)", web["ExecStart"][0])
    assert graceful is not None and float(web["TimeoutStopSec"][0]) > float(graceful[1])
    assert float(graceful[1]) > config.Config.WEBHOOK_VALIDATION_TIMEOUT  # the longest a request waits


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path):
    copies = [local_copy(WEB, tmp_path, WEB.name), local_copy(WORKER, tmp_path, "webhookapp-worker@1.service")]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, copies)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    # Unknown keys and bad values are only warnings: none may name our units.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "webhookapp" in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_catches_what_the_check_is_for(tmp_path):
    """The check above would fail on a unit whose program is missing or whose key is misspelt."""
    broken = WORKER.read_text().replace("TimeoutStopSec=", "TimeoutStopSecs=")
    (tmp_path / "broken.service").write_text(broken.replace(INSTALLED, str(tmp_path / "nowhere")))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "broken.service")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "TimeoutStopSecs" in result.stderr


def test_the_environment_file_names_settings_that_exist():
    names = re.findall(r"^#?([A-Z][A-Z_]+)=", ENV_FILE.read_text(), re.MULTILINE)
    assert names
    read = (ROOT / "webhookapp" / "infra" / "config.py").read_text()
    for name in names:
        assert name == "WEBHOOKAPP_CONFIG" or f'"{name}"' in read, name


def test_the_nginx_sample_sets_what_the_app_reads():
    text = NGINX.read_text()
    limit = re.search(r"client_max_body_size (\d+)k;", text)
    assert limit is not None and int(limit[1]) * 1024 == config.Config.MAX_CONTENT_LENGTH
    for header in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme", "X-Forwarded-Host $host"):
        assert f"proxy_set_header {header};" in text
    assert "location = /readyz" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_the_nginx_sample_passes_nginx_t(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (nginx -t loads the certificate)")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    site = NGINX.read_text()
    site = site.replace("/etc/ssl/certs/webhooks.example.com.pem", str(cert))
    site = site.replace("/etc/ssl/private/webhooks.example.com.key", str(key))
    (tmp_path / "site.conf").write_text(site)
    # Everything nginx writes goes to tmp_path, so that it runs without root.
    temp_paths = "".join(
        f" {kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n{temp_paths} include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
