"""Helpers for delivery-engine tests: tokens, posting events, running workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue, SimpleWorker

from webhookapp.services import dispatch, tokens

ROOT = Path(__file__).resolve().parent.parent


def api_token(account, *, platform: bool = False) -> str:
    return tokens.create_token(account, "tests", platform=platform)[1]


def post_event(client: FlaskClient, token: str, **body) -> tuple[int, dict]:
    response = client.post("/public/v1/events", json=body, headers={"Authorization": f"ApiKey {token}"})
    return response.status_code, response.get_json()


def run_worker(app: Flask) -> None:
    """Run queued jobs in this thread until the queue is empty (RQ's burst mode)."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    SimpleWorker([Queue(dispatch.QUEUE_NAME, connection=connection)], connection=connection).work(
        burst=True, logging_level="WARNING"
    )


def worker_env(app: Flask, **settings: object) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WEBHOOKAPP_CONFIG="development",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=app.config["REDIS_URL"],
        SECRET_KEY="worker-tests",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    env.update({name: str(value) for name, value in settings.items()})
    return env


def start_worker(app: Flask, *args: str, **settings: object) -> subprocess.Popen:
    """A real ``python -m workers`` process against the test's database and Redis."""
    return subprocess.Popen(
        [sys.executable, "-m", "workers", *args],
        cwd=ROOT,
        env=worker_env(app, **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    if process.stderr:
        process.stderr.close()
