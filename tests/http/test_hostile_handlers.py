"""Whatever a handler answers is recorded, and never stops the rest of its batch from being
recorded: NUL bytes, invalid UTF-8, lone surrogates in odd charsets, binary, odd headers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import make_webhook
from webhookapp.engine import delivery, runtime, triggers
from webhookapp.engine.transport import sender as sender_module
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

ANSWERS = {
    "nul": (b'{"ok": true}\x00 and after', "application/json"),
    "invalid utf-8": (b"caf\xe9 \xff\xfe", "text/plain; charset=utf-8"),
    "utf-16 lone surrogate": (b"\x00\xd8a\x00", "text/plain; charset=utf-16-le"),
    "binary": (bytes(range(256)), "application/octet-stream"),
}


def deliver_with_three_others(vendor, handler, **hostile_answer) -> tuple[Webhook, list[Webhook]]:
    """A webhook whose handler answers ``hostile_answer`` and three ordinary ones, delivered in
    one batch by one drain."""
    hostile = make_webhook(vendor, label="hostile", external_url=handler.behave("/hostile", **hostile_answer))
    fine = [make_webhook(vendor, label=f"fine {n}", external_url=handler.behave(f"/fine{n}")) for n in range(3)]
    for hook in [hostile, *fine]:
        triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    delivery.drain(runtime.current(), budget=5)
    db.session.rollback()
    return hostile, fine


@pytest.mark.parametrize("answer", ANSWERS, ids=list(ANSWERS))
def test_whatever_a_handler_answers_is_recorded_with_the_rest_of_its_batch(app, vendor, handler, answer):
    body, content_type = ANSWERS[answer]
    hostile, fine = deliver_with_three_others(
        vendor, handler, body=body, content_type=content_type, headers={"X-Odd": "a\x01b"}
    )
    for hook in [hostile, *fine]:
        stored = db.session.get(Webhook, hook.id)
        assert (stored.success_count, stored.lease_id, stored.next_trigger_at) == (1, None, None), hook.label
        [attempt] = db.session.scalars(select(Attempt).where(Attempt.webhook_id == hook.id)).all()
        assert attempt.success and attempt.response_status == 200
    recorded = db.session.scalars(select(Attempt).where(Attempt.webhook_id == hostile.id)).one()
    assert "\x00" not in recorded.response_body and len(recorded.response_body) > 0
    assert len(handler.requests_to("/hostile")) == 1  # recorded at once: no second delivery


@pytest.mark.postgresql  # SQLite stores NUL characters
def test_an_outcome_the_database_refuses_does_not_keep_its_batch_unrecorded(
    app, postgresql, vendor, handler, monkeypatch
):
    """Were an answer to slip through unscrubbed, PostgreSQL would refuse the whole batch: the batch
    is then recorded one outcome at a time, and the refused one without the response."""
    monkeypatch.setattr(sender_module, "scrub", lambda text: text)
    hostile, fine = deliver_with_three_others(vendor, handler, body=b"ok\x00")
    for hook in [hostile, *fine]:
        assert db.session.get(Webhook, hook.id).success_count == 1, hook.label
    recorded = db.session.scalars(select(Attempt).where(Attempt.webhook_id == hostile.id)).one()
    assert recorded.success and recorded.response_body.startswith("[The response could not be stored")
    assert len(handler.requests_to("/hostile")) == 1
