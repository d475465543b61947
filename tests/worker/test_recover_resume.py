"""A recovery survives its worker (docs/architecture.md, "Recover"): a real worker process is
killed in the middle of one, and a new one resumes from the committed cursor, sending nothing
twice but the request that was in flight; deliveries of other webhooks go on meanwhile."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, start_worker, stop
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Recovery, Webhook
from webhookapp.services import recoveries

pytestmark = pytest.mark.slow  # real worker processes, one killed

FAILED = 12
SETTINGS = {"WEBHOOK_RECOVER_RATE": 100, "WEBHOOK_VALIDATION_TIMEOUT": 1}  # a dead slice's lease: 6 s


def wait_until(condition, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def recovery_now(recovery_id: int) -> Recovery:
    db.session.rollback()  # see the workers' commits
    return db.session.get(Recovery, recovery_id)


def successes(hook_id: str) -> int:
    db.session.rollback()
    return db.session.get(Webhook, hook_id).success_count


def test_a_recovery_whose_worker_is_killed_resumes_from_its_cursor(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/recover", delay=0.15))
    start = utcnow() - timedelta(hours=1)
    rows = [
        {"webhook_id": hook.id, "kind": "trigger", "number": 1, "started_at": start + timedelta(seconds=i),
         "success": False, "request_method": "POST", "request_url": "https://old.example/hook", "request_headers": {}}
        for i in range(FAILED)
    ]  # fmt: skip
    originals = list(db.session.scalars(insert(Attempt).returning(Attempt.id), rows))
    db.session.commit()
    # Another type: the event below must not make the recovered webhook's own trigger due.
    other = make_webhook(vendor, external_url=handler.behave("/other"), label="Another",
                         type_key="tier_config_request.event")  # fmt: skip

    worker = start_worker(app, **SETTINGS)
    try:
        recovery = recoveries.start(db.session.get(Webhook, hook.id), start)
        assert recovery.total == FAILED
        recovery_id = recovery.id
        # Another webhook's event is delivered while the recovery runs, not after it.
        post_event(client, api_token(vendor.account), object_class=other.object_class, product_id=other.product_id)
        handler.wait_for("/other", 1, timeout=30)
        wait_until(lambda: successes(other.id) == 1)
        assert recovery_now(recovery_id).state == "running"

        wait_until(lambda: recovery_now(recovery_id).sent >= 3)
        worker.send_signal(signal.SIGKILL)
        stop(worker)
        killed_at = recovery_now(recovery_id).sent
        assert 3 <= killed_at < FAILED
        worker = start_worker(app, **SETTINGS)
        wait_until(lambda: recovery_now(recovery_id).state == "finished")
    finally:
        stop(worker)

    done = recovery_now(recovery_id)
    assert (done.sent, done.succeeded) == (FAILED, FAILED)
    again = list(db.session.scalars(select(Attempt.redelivery_of).where(Attempt.redelivery_of.is_not(None))))
    assert sorted(again) == originals  # each once, recorded once
    # Only the request in flight at the kill may have been sent twice (SIGKILL can land anywhere).
    assert FAILED <= len(handler.requests_to("/recover")) <= FAILED + 1
    hooks = db.session.scalar(select(func.count()).select_from(Attempt).where(Attempt.webhook_id == hook.id))
    assert hooks == 2 * FAILED  # the originals and their redeliveries: no delivery of its own
    assert db.session.scalar(select(func.count()).select_from(Attempt).where(Attempt.webhook_id == other.id)) == 1
    assert handler.requests_to("/other")[0].at < handler.requests_to("/recover")[-1].at
