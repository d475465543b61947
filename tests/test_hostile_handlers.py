"""Whatever a handler answers is recorded, and never stops the rest of its batch from being
recorded: NUL bytes, invalid UTF-8, lone surrogates in odd charsets, binary, odd headers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import make_webhook
from webhookapp.engine import delivery, triggers
from webhookapp.extensions import db
from webhookapp.models import Attempt, Webhook

ANSWERS = {
    "nul": (b'{"ok": true}\x00 and after', "application/json"),
    "invalid utf-8": (b"caf\xe9 \xff\xfe", "text/plain; charset=utf-8"),
    "utf-16 lone surrogate": (b"\x00\xd8a\x00", "text/plain; charset=utf-16-le"),
    "binary": (bytes(range(256)), "application/octet-stream"),
}


@pytest.mark.parametrize("answer", ANSWERS, ids=list(ANSWERS))
def test_whatever_a_handler_answers_is_recorded_with_the_rest_of_its_batch(app, vendor, handler, answer):
    body, content_type = ANSWERS[answer]
    hostile = make_webhook(vendor, label="hostile", external_url=handler.behave(
        "/hostile", body=body, content_type=content_type, headers={"X-Odd": "a\x01b"}))  # fmt: skip
    fine = [make_webhook(vendor, label=f"fine {n}", external_url=handler.behave(f"/fine{n}")) for n in range(3)]
    for hook in [hostile, *fine]:
        triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    delivery.drain(budget=5)
    db.session.rollback()
    for hook in [hostile, *fine]:
        stored = db.session.get(Webhook, hook.id)
        assert (stored.success_count, stored.lease_id, stored.next_trigger_at) == (1, None, None), hook.label
        [attempt] = db.session.scalars(select(Attempt).where(Attempt.webhook_id == hook.id)).all()
        assert attempt.success and attempt.response_status == 200
    recorded = db.session.scalars(select(Attempt).where(Attempt.webhook_id == hostile.id)).one()
    assert "\x00" not in recorded.response_body and len(recorded.response_body) > 0
    assert len(handler.requests_to("/hostile")) == 1  # recorded at once: no second delivery
