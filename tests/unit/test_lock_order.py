"""Multi-row writers lock webhook rows in id order, so two of them never deadlock.

Two transactions that update the same rows in opposite orders each hold a row the other waits
for, and PostgreSQL kills one of them ("deadlock detected"). Here two threads, each with its own
app context and connection, hand back claims on the same webhooks given in opposite orders, many
rounds, started together (docs/architecture.md, "Trigger state").
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import update

from tests.conftest import make_webhook
from webhookapp.core.times import utcnow
from webhookapp.engine import triggers
from webhookapp.engine.types import Claim
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

WEBHOOKS = 24
ROUNDS = 20


pytestmark = pytest.mark.postgresql  # SQLite takes one writer at a time: row locks are PostgreSQL's


def claim_all(ids: list[str]) -> list[Claim]:
    """Every webhook's trigger in flight, under one lease."""
    db.session.execute(update(Webhook).where(Webhook.id.in_(ids)).values(next_trigger_at=utcnow()))
    db.session.commit()
    claims = triggers.claim_due(len(ids), ids)
    assert sorted(claim.webhook.id for claim in claims) == sorted(ids)
    return claims


def together(app: Flask, *writers: Callable[[], int]) -> tuple[list[int], list[BaseException]]:
    """Run each writer in a thread of its own app context, all released at once; what they
    returned and what they raised."""
    start = threading.Barrier(len(writers))
    results: list[int] = []
    errors: list[BaseException] = []

    def run(writer: Callable[[], int]) -> None:
        with app.app_context():
            try:
                start.wait(timeout=10)
                results.append(writer())
            except BaseException as exc:  # reported by the test
                errors.append(exc)
                db.session.rollback()

    threads = [threading.Thread(target=run, args=(writer,)) for writer in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results, errors


def test_hand_backs_in_opposite_orders_do_not_deadlock(app, vendor, postgresql):
    ids = [make_webhook(vendor, label=f"Hook {n}").id for n in range(WEBHOOKS)]
    for _round in range(ROUNDS):
        claims = claim_all(ids)
        handed_back, errors = together(
            app,
            functools.partial(triggers.hand_back, claims),
            functools.partial(triggers.hand_back, claims[::-1]),
        )
        assert errors == []  # not "deadlock detected"
        assert sum(handed_back) == WEBHOOKS  # each lease went back once, by one of the two
