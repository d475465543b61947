"""Concurrent events for one product: no deadlock, no lost count (the rows are locked in id order)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import make_webhook
from tests.engine import api_token
from webhookapp.extensions import db
from webhookapp.models import Event, Webhook
from webhookapp.services import triggers


def test_concurrent_events_for_one_product_are_all_counted(app, vendor):
    hooks = [make_webhook(vendor, label=f"Hook {n}") for n in range(10)]
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hooks[0].product_id}

    def post_many(_: int) -> list[int]:
        client = app.test_client()
        headers = {"Authorization": f"ApiKey {token}"}
        return [client.post("/public/v1/events", json=body, headers=headers).status_code for _ in range(10)]

    with ThreadPoolExecutor(6) as pool:
        statuses = [status for batch in pool.map(post_many, range(6)) for status in batch]
    assert statuses == [202] * 60
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 60
    assert sorted(db.session.scalars(db.select(Webhook.events_count))) == [60] * 10


def test_a_claim_takes_no_more_than_its_limit(app, vendor):
    hooks = [make_webhook(vendor, label=f"Hook {n}") for n in range(40)]
    for hook in hooks:
        triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    assert len(triggers.claim_due(7)) == 7
    assert len(triggers.claim_due(100)) == 33
    assert triggers.claim_due(100) == []


def test_events_arriving_while_their_product_is_being_written_are_committed_as_one_group(app, vendor):
    """PostgreSQL: the followers of a busy product go in one pipelined transaction (one xmin)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("group commit is the PostgreSQL path")
    hooks = [make_webhook(vendor, label=f"Hook {n}") for n in range(3)]
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hooks[0].product_id}
    db.session.remove()
    blocking_engine = create_engine(db.engine.url)
    blocker = blocking_engine.connect()
    blocker.execute(text("SELECT id FROM webhooks ORDER BY id FOR UPDATE"))  # the first event waits on this

    def post(client_id: str) -> int:
        client = app.test_client()
        headers = {"Authorization": f"ApiKey {token}"}
        return client.post("/public/v1/events", json={**body, "id": client_id}, headers=headers).status_code

    with ThreadPoolExecutor(6) as pool:
        leader = pool.submit(post, "lead")
        time.sleep(0.3)  # the leader's statement is waiting for the rows
        followers = [pool.submit(post, f"follow-{n}") for n in range(5)]
        time.sleep(0.3)  # the followers are queued behind it
        blocker.rollback()
        blocker.close()
        blocking_engine.dispose()
        statuses = [leader.result(10), *(future.result(10) for future in followers)]
    assert statuses == [202] * 6
    transactions = db.session.execute(
        text("SELECT count(DISTINCT xmin::text) FROM events WHERE client_event_id LIKE 'follow-%'")
    ).scalar()
    assert transactions == 1
    assert sorted(db.session.scalars(db.select(Webhook.events_count))) == [6, 6, 6]
