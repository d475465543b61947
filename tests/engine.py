"""Helpers for delivery-engine tests: tokens, posting events, running workers, counting statements."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import event, text, update

from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch
from webhookapp.infra.extensions import db
from webhookapp.models import Event, EventFeed
from webhookapp.services import tokens

ROOT = Path(__file__).resolve().parent.parent


def api_token(account, *, platform: bool = False) -> str:
    return tokens.create_token(account, "tests", platform=platform)[1]


def post_event(client: FlaskClient, token: str, **body) -> tuple[int, dict]:
    response = client.post("/public/v1/events", json=body, headers={"Authorization": f"ApiKey {token}"})
    return response.status_code, response.get_json()


class QuickUnsubscribe:
    """For an RQ worker class: its end does not wait on its command channel.

    RQ's ``unsubscribe`` sends UNSUBSCRIBE and only then stops the thread listening on the
    worker's channel: the thread, woken by the reply, has gone back to a 60-second wait, and
    the join gives up on it after a second. Stopping it first lets the reply end its wait, so a
    burst that found its queue empty takes milliseconds, not about a second.
    """

    pubsub_thread: Any

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub_thread.stop()
        super().unsubscribe()  # type: ignore[misc]  # the worker class mixed with


class BurstWorker(QuickUnsubscribe, SimpleWorker):
    """RQ's worker in this thread (``run_worker``)."""


def run_worker(app: Flask) -> None:
    """Run queued jobs in this thread until the queue is empty (RQ's burst mode)."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    BurstWorker([Queue(dispatch.QUEUE_NAME, connection=connection)], connection=connection).work(
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
        # The test app's keys: the stored secrets are encrypted with them.
        WEBHOOK_ENCRYPTION_KEYS=app.config["WEBHOOK_ENCRYPTION_KEYS"],
    )
    env.update({name: str(value) for name, value in settings.items()})
    return env


def start_worker(app: Flask, *args: str, **settings: object) -> subprocess.Popen:
    """A real ``python -m workers`` process against the test's database and Redis.

    Its log goes to a temporary file (``process.log_path``), printed by :func:`stop` on request.
    """
    log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)  # noqa: SIM115
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers", *args],
            cwd=ROOT,
            env=worker_env(app, **settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process.log_path = log.name
    return process


def stop(process: subprocess.Popen, *, show_log: bool = False) -> None:
    """Kill a process started here, and its children (gunicorn's workers), and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # started with start_new_session: its own group
    process.wait(timeout=10)
    log_path = getattr(process, "log_path", None)
    if log_path:
        if show_log:
            print(Path(log_path).read_text())
        os.unlink(log_path)


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements run on the app's engine inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def move_event(event_id: str, created_at: datetime) -> None:
    """Give a stored event another time (in the session's transaction), its rows of
    ``event_feeds`` with it: the service never moves an event, but a test that needs events
    minutes apart does."""
    db.session.execute(update(Event).where(Event.id == event_id).values(created_at=created_at))
    db.session.execute(update(EventFeed).where(EventFeed.event_id == event_id).values(created_at=created_at))


def platform_group(product_id: str, count: int = 3) -> list[str]:
    """Store ``count`` events of a new platform token as one group, in one statement of the
    PostgreSQL ingest (as concurrent requests would go); returns their ids, each stored."""
    from tests.conftest import make_tenant
    from webhookapp.engine.ingest import postgresql as ingest_postgresql

    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    token = tokens.create_token(platform.account, "tests", platform=True)[0]
    now = utcnow()
    ids = [f"EV-000-000-000-00{n}" for n in range(count)]
    body = {"object_class": "fulfillment_request", "product_id": product_id}
    at = [now + timedelta(microseconds=n) for n in range(count)]
    params = [
        ingest_postgresql.parameters(token.token_hash, body, event_id=event_id, now=moment)
        for event_id, moment in zip(ids, at, strict=True)
    ]
    group = [ingest_postgresql._Waiting(each, wake=False) for each in params]
    outcomes = ingest_postgresql._run(db.engine, group)
    assert all(outcome.webhook_ids for outcome in outcomes)
    return ids


def insert_attempts(hook_id: str, count: int, *, failing_every: int = 0) -> None:
    """``count`` trigger attempts of the webhook a second apart, the newest a second ago, in
    one statement on PostgreSQL (``failing_every``: every n-th one failed), in the session's transaction;
    the webhook's count of stored attempts is left as it was."""
    success = "n % :every <> 0" if failing_every else "true"
    db.session.execute(text(
        "INSERT INTO attempts (webhook_id, kind, number, started_at, duration_ms, success, request_method,"
        f" request_url, request_headers, response_truncated) SELECT :hook, 'trigger', 1, now() - n * interval"
        f" '1 second', 1, {success}, 'POST', 'https://h.test/', '{{}}', false FROM generate_series(1, :count) AS n"
    ), {"hook": hook_id, "count": count, "every": failing_every})  # fmt: skip
