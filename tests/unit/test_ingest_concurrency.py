"""Concurrent events for one product: no deadlock, no lost count (the rows are locked in id order)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import make_webhook
from tests.engine import api_token
from webhookapp.core.times import utcnow
from webhookapp.engine import triggers
from webhookapp.engine.triggers import claims
from webhookapp.infra.extensions import db
from webhookapp.models import Event, Webhook


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


@contextlib.contextmanager
def rows_held(app, sql: str) -> Iterator[None]:
    """Another transaction holds the rows ``sql`` locks until the block ends."""
    engine = create_engine(db.engine.url)
    blocker = engine.connect()
    blocker.execute(text(sql))
    try:
        yield
    finally:
        blocker.rollback()
        blocker.close()
        engine.dispose()


def post_grouped(app, token: str, leader: dict, followers: list[dict], lock_sql: str) -> list[tuple[int, dict]]:
    """Post ``leader`` while ``lock_sql``'s rows are held, so that its statement waits; then the
    ``followers`` in this order, which queue behind it; then let go. Answers in posting order."""

    def post(body: dict) -> tuple[int, dict]:
        response = app.test_client().post("/public/v1/events", json=body, headers={"Authorization": f"ApiKey {token}"})
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(len(followers) + 1) as pool:
        with rows_held(app, lock_sql):
            first = pool.submit(post, leader)
            time.sleep(0.3)  # the leader's statement is waiting for the rows
            rest = []
            for body in followers:
                rest.append(pool.submit(post, body))
                time.sleep(0.05)  # queued in this order
            time.sleep(0.2)
        return [first.result(10), *(future.result(10) for future in rest)]


@pytest.mark.postgresql  # group commit is the PostgreSQL path
def test_events_arriving_while_their_product_is_being_written_are_committed_as_one_group(app, postgresql, vendor):
    """PostgreSQL: the followers of a busy product go in one statement (one transaction, one xmin)."""
    hooks = [make_webhook(vendor, label=f"Hook {n}") for n in range(3)]
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hooks[0].product_id}
    hook_ids = sorted(hook.id for hook in hooks)
    db.session.remove()
    answers = post_grouped(
        app,
        token,
        {**body, "id": "lead"},
        [{**body, "id": f"follow-{n}"} for n in range(5)],
        "SELECT id FROM webhooks ORDER BY id FOR UPDATE",
    )
    assert [status for status, _ in answers] == [202] * 6
    transactions = db.session.execute(
        text("SELECT count(DISTINCT xmin::text) FROM events WHERE client_event_id LIKE 'follow-%'")
    ).scalar()
    assert transactions == 1
    assert sorted(db.session.scalars(db.select(Webhook.events_count))) == [6, 6, 6]
    assert all(answer["webhooks"] == hook_ids for _, answer in answers)


@pytest.mark.postgresql  # group commit is the PostgreSQL path
def test_a_group_stores_its_events_in_order_and_answers_a_repeated_client_id_as_a_duplicate(app, postgresql, vendor):
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    db.session.remove()
    answers = post_grouped(
        app,
        token,
        {**body, "id": "lead"},
        [
            {**body, "id": "a", "api_url": "https://api.example.com/a"},
            {**body, "id": "b", "api_url": "https://api.example.com/b"},
            {**body, "id": "a", "api_url": "https://api.example.com/again"},  # a repeat: counted nothing
        ],
        "SELECT id FROM webhooks ORDER BY id FOR UPDATE",
    )
    assert [status for status, _ in answers] == [202, 202, 202, 200]
    assert answers[3][1] == {**answers[1][1], "duplicate": True}
    webhook = db.session.get(Webhook, hook.id)
    assert webhook.events_count == 3
    assert webhook.last_event_api_url == "https://api.example.com/b"  # the last event stored
    stored = db.session.execute(db.select(Event.client_event_id, Event.api_url).order_by(Event.created_at)).all()
    assert [tuple(row) for row in stored] == [
        ("lead", None),
        ("a", "https://api.example.com/a"),
        ("b", "https://api.example.com/b"),
    ]


@pytest.mark.postgresql  # group commit is the PostgreSQL path
def test_events_for_other_webhooks_are_not_held_up_by_a_busy_group(app, postgresql, vendor):
    """Another object class matches other webhooks: its events form their own group, at once."""
    fulfillment = make_webhook(vendor)
    tier = make_webhook(vendor, label="Tier hook", type_key="tier_config_request.event")
    token = api_token(vendor.account)
    product_id, fulfillment_id, tier_id = fulfillment.product_id, fulfillment.id, tier.id
    db.session.remove()

    def post(object_class: str) -> int:
        body = {"object_class": object_class, "product_id": product_id}
        headers = {"Authorization": f"ApiKey {token}"}
        return app.test_client().post("/public/v1/events", json=body, headers=headers).status_code

    with ThreadPoolExecutor(3) as pool:
        with rows_held(app, f"SELECT id FROM webhooks WHERE id = '{fulfillment_id}' FOR UPDATE"):
            waiting = pool.submit(post, "fulfillment_request")
            time.sleep(0.3)  # its statement is waiting for the row
            others = [pool.submit(post, "tier_config_request") for _ in range(2)]
            assert [future.result(5) for future in others] == [202, 202]  # while the row is still held
            assert not waiting.done()
        assert waiting.result(10) == 202
    assert db.session.get(Webhook, fulfillment_id).events_count == 1
    assert db.session.get(Webhook, tier_id).events_count == 2


@pytest.mark.postgresql  # group commit is the PostgreSQL path
def test_a_group_for_a_product_the_token_cannot_see_is_refused_whole(app, postgresql, vendor, other_vendor):
    make_webhook(other_vendor)
    token = api_token(vendor.account)  # never used yet: its first statement notes its use, and waits here
    body = {"object_class": "fulfillment_request", "product_id": other_vendor.products[0].id}
    db.session.remove()
    answers = post_grouped(app, token, body, [body] * 3, "SELECT id FROM api_tokens FOR UPDATE")
    assert [status for status, _ in answers] == [404] * 4
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0


@pytest.mark.postgresql
def test_claims_and_the_next_due_time_read_the_pending_triggers_alone(app, postgresql, vendor):
    """With many webhooks and few pending triggers, PostgreSQL reaches the due ones through the
    partial index on pending triggers, never by reading every webhook."""
    hook = make_webhook(vendor)
    db.session.execute(text(
        "INSERT INTO webhooks (id, account_id, product_id, label, description, active, out_of_order, object_class,"
        " type, http_method, external_url, jwt_secret_encrypted, headers, data, created_at, modified_at, events_count,"
        " triggers_count, success_count, failure_count, failures_since_last_success, trigger_attempts, lease_attempt)"
        " SELECT 'WH-' || n, account_id, product_id, label, description, active, out_of_order, object_class, type,"
        " http_method, external_url, jwt_secret_encrypted, headers, data, created_at, modified_at, 0, 0, 0, 0, 0, 0, 0"
        " FROM webhooks, generate_series(1, 20000) AS n WHERE id = :id"), {"id": hook.id})  # fmt: skip
    for pending in ("WH-7", "WH-70", "WH-700"):
        db.session.execute(text("UPDATE webhooks SET next_trigger_at = now() WHERE id = :id"), {"id": pending})
    db.session.commit()
    db.session.execute(text("ANALYZE webhooks"))
    params = {"now": utcnow(), "limit": 16, "lease_id": "x", "lease_expires_at": utcnow()}
    plans = []
    for statement in (claims._claim_statement(False), triggers.next_due_query()):
        compiled = statement.compile(db.engine)
        rows = db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.construct_params(params))
        plans.append("\n".join(row[0] for row in rows))
    db.session.rollback()
    for plan in plans:
        assert "ix_webhooks_due" in plan and "Seq Scan on webhooks" not in plan, plan
    assert sorted(claim.webhook.id for claim in triggers.claim_due(16)) == ["WH-7", "WH-70", "WH-700"]
