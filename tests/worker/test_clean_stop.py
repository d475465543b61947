"""Stopping cleanly: ``make run``'s Ctrl-C stops the web server and the worker before Redis, with
no traceback; a worker told to stop (SIGTERM) finishes its sends in flight and records them, and
hands back the triggers it claimed but had not sent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import make_webhook
from tests.engine import ROOT, api_token, post_event, start_worker, stop
from tests.servers import free_port
from webhookapp.engine import triggers
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


def stored(webhook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, webhook_id)


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "make run's process ended while starting"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@pytest.mark.slow
def test_ctrl_c_on_make_run_stops_everything_quietly_redis_last(app, tmp_path: Path):
    """The devserver runs migrations-free here (the app fixture made the tables) on its own SQLite
    file, with a private Redis; Ctrl-C goes to its whole foreground group, as a terminal's does."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(HOST="127.0.0.1", PORT=str(port), DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               WEBHOOKAPP_CONFIG="development", SECRET_KEY="stop-tests",
               WEBHOOK_ENCRYPTION_KEYS=app.config["WEBHOOK_ENCRYPTION_KEYS"],
               WEBHOOK_RETRY_BASE="3", WEBHOOK_MAX_ATTEMPTS="3")  # as `make run NAME=value` exports them  # fmt: skip
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        run = subprocess.Popen(
            [sys.executable, "-m", "webhookapp.devserver"], cwd=ROOT, env=env, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/login", run)
        time.sleep(1)  # the worker is up and waiting on Redis
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=30) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    text = log.read_text()
    assert "Traceback" not in text and "Error" not in text, text
    assert "Stopping: the web server and the worker, then Redis." in text
    # It read the quick schedule it was given (the worker reads the same environment).
    assert "retried 3 s to 6 s apart and is Out of order after 3 failed attempts, about 9 s after" in text
    assert "Worker stopped." in text
    assert len(text.splitlines()) < 20, text
    redis_url = next(line for line in text.splitlines() if "private Redis at" in line).split(" at ")[1].split()[0]
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    for closed in (port, redis_port):
        try:
            requests.get(f"http://127.0.0.1:{closed}/", timeout=1)
        except requests.ConnectionError:
            continue
        raise AssertionError(f"port {closed} still answers after the stop")


@pytest.mark.slow
def test_a_worker_told_to_stop_finishes_its_send_in_flight(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/slow", delay=2.0))
    token = api_token(vendor.account)
    # A job that would otherwise wait 30 s for more work after its send: the stop cuts that short.
    worker = start_worker(app, "--no-cron", WEBHOOK_DELIVERY_TIMEOUT=20, WEBHOOK_IDLE_WAIT=30)
    try:
        assert post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)[0] == 202
        handler.wait_for("/slow", 1, timeout=15)  # the send is in flight
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
        took = time.monotonic() - asked
        log = Path(worker.log_path).read_text()
    finally:
        stop(worker)
    assert took < 10, f"the worker took {took:.1f} s to stop"
    assert "Traceback" not in log, log
    [attempt] = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id)).all()
    assert attempt.success is True  # answered after the signal, and recorded before the exit
    after = stored(hook.id)
    assert (after.lease_id, after.next_trigger_at, after.success_count) == (None, None, 1)


def test_claimed_triggers_not_sent_are_handed_back_due_now(app, vendor):
    first = make_webhook(vendor, label="first")
    retried = make_webhook(vendor, label="retried")
    for hook in (first, retried):
        triggers.make_due_now(hook, count_event=True)
    retried_row = stored(retried.id)
    retried_row.trigger_attempts = 2  # two failed attempts before: the claim is attempt 3
    db.session.commit()
    claims = triggers.claim_due(10)
    assert sorted(claim.attempt for claim in claims) == [1, 3]
    assert stored(first.id).next_trigger_at is None

    assert triggers.hand_back(claims) == 2
    for hook, failed_before in ((first, 0), (retried, 2)):
        row = stored(hook.id)
        assert (row.lease_id, row.lease_attempt, row.trigger_attempts) == (None, 0, failed_before)
        assert row.next_trigger_at is not None and triggers.due_now(row)
    assert triggers.hand_back(claims) == 0  # leases no longer held: nothing changes
    assert sorted(claim.attempt for claim in triggers.claim_due(10)) == [1, 3]  # the same attempts again
