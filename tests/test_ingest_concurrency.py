"""Concurrent events for one product: no deadlock, no lost count (the rows are locked in id order)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
