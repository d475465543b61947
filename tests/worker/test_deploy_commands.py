"""The commands of deploy/'s systemd units run the service, and SIGTERM, what the units send,
stops both processes well within their ``TimeoutStopSec`` (docs/deploying.md, "The units")."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from redis import Redis
from rq import Worker

from tests.engine import ROOT, stop, worker_env
from tests.servers import free_port
from tests.unit.test_deploy_units import INSTALLED, WEB, WORKER, settings


def command_of(unit: Path, port: int) -> list[str]:
    """The unit's ``ExecStart``, with this checkout's virtualenv and a free port."""
    venv_bin = str(Path(sys.executable).parent)
    line = settings(unit)["ExecStart"][0].replace(f"{INSTALLED}/.venv/bin/python", sys.executable)
    words = shlex.split(line.replace(f"{INSTALLED}/.venv/bin", venv_bin))
    return [f"127.0.0.1:{port}" if word == "127.0.0.1:8000" else word for word in words]


@pytest.mark.slow
def test_the_units_commands_serve_and_stop_on_sigterm(app, tmp_path):
    port = free_port()
    web_command, worker_command = command_of(WEB, port), command_of(WORKER, port)
    assert f"127.0.0.1:{port}" in web_command and worker_command == [sys.executable, "-m", "workers"]
    logs = [(tmp_path / f"{index}.log").open("w") for index in range(2)]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=worker_env(app), start_new_session=True, stdout=subprocess.DEVNULL, stderr=log,
        )
        for command, log in zip((web_command, worker_command), logs, strict=True)
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, (tmp_path / "0.log").read_text()
                time.sleep(0.1)
        assert ready.status_code == 200, ready.text
        connection = Redis.from_url(app.config["REDIS_URL"])
        deadline = time.monotonic() + 30
        while processes[1].pid not in {worker.pid for worker in Worker.all(connection=connection)}:
            assert processes[1].poll() is None and time.monotonic() < deadline, (tmp_path / "1.log").read_text()
            time.sleep(0.1)
        for process in processes:
            process.send_signal(signal.SIGTERM)  # KillMode=mixed: the main process alone
        for index, (process, unit) in enumerate(zip(processes, (WEB, WORKER), strict=True)):
            grace = float(settings(unit)["TimeoutStopSec"][0])
            assert process.wait(timeout=grace) == 0, (tmp_path / f"{index}.log").read_text()
        assert processes[1].pid not in {worker.pid for worker in Worker.all(connection=connection)}
        connection.close()
    finally:
        for process in processes:
            stop(process)
        for log in logs:
            log.close()
