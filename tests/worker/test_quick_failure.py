"""Failure within a minute (docs/using.md, "Trying failure"): ``make run`` says how to see a
webhook go Out of order, and a worker started with that schedule does it."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, start_worker, stop
from tests.servers import free_port
from webhookapp.devserver import QUICK_FAILURE, retry_note, span
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


def test_make_run_says_how_to_see_out_of_order_within_a_minute(app):
    defaults = retry_note(app.config)
    assert defaults[0] == (
        "A failing webhook is retried 5 min to 6 h apart and is Out of order after 10 failed attempts, "
        "about 22 h 35 min after the first."
    )
    hint = f"To see it within a minute: {QUICK_FAILURE}, then Trigger Now on a webhook whose handler is not running."
    assert defaults[1] == hint and QUICK_FAILURE == "make run WEBHOOK_RETRY_BASE=3 WEBHOOK_MAX_ATTEMPTS=3"
    quick = retry_note({**app.config, "WEBHOOK_RETRY_BASE": 3, "WEBHOOK_MAX_ATTEMPTS": 3})
    assert quick == ["A failing webhook is retried 3 s to 6 s apart and is Out of order after 3 failed attempts, "
                     "about 9 s after the first."]  # fmt: skip
    assert [span(9), span(300), span(81300)] == ["9 s", "5 min", "22 h 35 min"]


@pytest.mark.slow
def test_a_worker_on_the_quick_schedule_makes_a_webhook_out_of_order_within_a_minute(app, client, vendor):
    port = free_port()  # the handler is not running
    hook = make_webhook(vendor, external_url=f"http://127.0.0.1:{port}/webhook")
    worker = start_worker(app, WEBHOOK_RETRY_BASE=3, WEBHOOK_MAX_ATTEMPTS=3)  # QUICK_FAILURE's settings
    try:
        status, _ = post_event(client, api_token(vendor.account), object_class="fulfillment_request",
                               product_id=hook.product_id)  # fmt: skip
        assert status == 202
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(Webhook, hook.id).out_of_order:
                break
            time.sleep(0.2)
    finally:
        stop(worker)
    db.session.expire_all()
    assert db.session.get(Webhook, hook.id).out_of_order, "not Out of order within a minute"
    attempts = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id).order_by(Attempt.id)).all()
    assert [attempt.number for attempt in attempts] == [1, 2, 3]
    assert {attempt.error for attempt in attempts} == {f"Connection refused by 127.0.0.1:{port}"}
    gaps = [later.started_at - earlier.started_at for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= timedelta(seconds=3) and gaps[1] >= timedelta(seconds=6), gaps  # the ladder it was given
