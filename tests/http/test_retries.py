"""Retries at increasing intervals, Out of order, coalescing, Trigger Now, disabled webhooks
(docs/architecture.md, "Trigger state")."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from webhookapp.engine import triggers
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


@pytest.fixture
def fast_retries(app):
    app.config.update(
        WEBHOOK_RETRY_BASE=0.2, WEBHOOK_RETRY_FACTOR=2, WEBHOOK_RETRY_MAX_INTERVAL=10, WEBHOOK_MAX_ATTEMPTS=4
    )


def fresh(hook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, hook_id)


def test_retry_delays_grow_from_the_base_and_are_capped(app):
    app.config.update(WEBHOOK_RETRY_BASE=300, WEBHOOK_RETRY_FACTOR=2, WEBHOOK_RETRY_MAX_INTERVAL=21600)
    delays = [triggers.retry_delay(n) for n in range(1, 11)]
    assert delays[:4] == [300, 600, 1200, 2400]
    assert all(later > earlier for earlier, later in itertools.pairwise(delays[:8]))
    assert max(delays) == 21600 and min(delays) == 300
    app.config.update(WEBHOOK_RETRY_FACTOR=0.5)  # a misconfigured factor still never goes below the base
    assert triggers.retry_delay(3) == 300


@pytest.mark.slow
def test_failures_retry_at_increasing_intervals_then_out_of_order(app, client, vendor, handler, fast_retries):
    hook = make_webhook(vendor, external_url=handler.behave("/fail", status=500))
    token = api_token(vendor.account)
    post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)  # the job stays for retries due within seconds

    received = handler.wait_for("/fail", 4)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
    # Each retry came at least its rung of the ladder after the attempt before (a busy machine only
    # adds), and the rungs double: 0.2, 0.4, 0.8 s. How the ladder grows is checked exactly above.
    for n, gap in enumerate(gaps, start=1):
        assert gap >= 0.2 * 2 ** (n - 1) - 0.01, gaps
    stored = fresh(hook.id)
    assert stored.status == "Out of order" and stored.out_of_order
    assert (stored.triggers_count, stored.failure_count, stored.failures_since_last_success) == (4, 4, 4)
    assert [a.number for a in db.session.scalars(db.select(Attempt).order_by(Attempt.id))] == [1, 2, 3, 4]

    # Out of order: events still count, nothing is sent.
    for _ in range(3):
        status, body = post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
        assert status == 202 and body["webhooks"] == [hook.id]
    run_worker(app)
    assert len(handler.requests_to("/fail")) == 4
    assert fresh(hook.id).events_count == 4

    # Re-enabling sends at once, because events arrived meanwhile.
    handler.behave("/fail", status=200)
    client.post("/login", data={"email": vendor.email, "password": "correct horse battery"})
    client.post(f"/webhooks/{hook.id}/enable")
    run_worker(app)
    handler.wait_for("/fail", 5)
    stored = fresh(hook.id)
    assert stored.status == "Enabled"
    assert (stored.success_count, stored.failures_since_last_success) == (1, 0)


@pytest.mark.slow
def test_reenabling_without_new_events_sends_nothing(app, client, auth, vendor, handler, fast_retries):
    hook = make_webhook(vendor, external_url=handler.behave("/quiet", status=503))
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    assert fresh(hook.id).out_of_order
    auth.login()
    client.post(f"/webhooks/{hook.id}/enable")
    run_worker(app)
    assert len(handler.requests_to("/quiet")) == 4
    assert fresh(hook.id).next_trigger_at is None


@pytest.mark.slow
def test_a_hundred_events_while_pending_make_one_delivery(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/bell"))
    token = api_token(vendor.account)
    for _ in range(100):
        status, _body = post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
        assert status == 202
    run_worker(app)
    handler.wait_for("/bell", 1)
    run_worker(app)
    assert len(handler.requests_to("/bell")) == 1
    stored = fresh(hook.id)
    assert (stored.events_count, stored.triggers_count, stored.success_count) == (100, 1, 1)


def test_an_event_during_an_attempt_makes_the_next_trigger(app, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/busy"))
    triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    [_claim] = triggers.claim_due(10)
    assert triggers.claim_due(10) == []  # one attempt in flight at most
    triggers.make_due_now(hook, count_event=True)  # Trigger Now while in flight
    db.session.commit()
    assert triggers.claim_due(10) == []  # still only one in flight
    assert fresh(hook.id).next_trigger_at is not None


def test_trigger_now_counts_an_event_and_delivers(app, client, auth, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/now"))
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/trigger", follow_redirects=True)
    assert response.status_code == 200 and b"Triggered" in response.data
    run_worker(app)
    handler.wait_for("/now")
    stored = fresh(hook.id)
    assert (stored.events_count, stored.triggers_count, stored.success_count) == (1, 1, 1)


def test_disabled_webhooks_neither_count_nor_send(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/off"), active=False)
    status, body = post_event(
        client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id
    )
    assert status == 202 and body["webhooks"] == []
    run_worker(app)
    assert handler.requests_to("/off") == []
    assert fresh(hook.id).events_count == 0
