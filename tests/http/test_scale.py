"""Costs that must not grow with the data (docs/architecture.md, "Scale"): deleting in the
background, pruning in batches by one worker at a time, offset pages read by key, list pages in a
fixed number of statements, and the indexes PostgreSQL reads them through."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import func, select, text

from tests.conftest import make_webhook
from tests.engine import api_token, insert_attempts, run_worker, statements
from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, maintenance
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, DeletedWebhook, Event, MaintenanceLease, Webhook
from webhookapp.services import webhook_changes as service
from webhookapp.services import webhook_queries as queries


def add_attempts(hook_id: str, count: int, *, days_ago: float = 0, same_second: int = 1) -> None:
    start = utcnow() - timedelta(days=days_ago, hours=1)
    db.session.add_all(
        Attempt(webhook_id=hook_id, number=n + 1, started_at=start + timedelta(seconds=n // same_second),
                success=n % 4 != 0, request_method="POST", request_url="https://h.test/", request_headers={})
        for n in range(count)
    )  # fmt: skip
    db.session.commit()


def add_events(account_id: str, count: int, *, days_ago: float) -> None:
    moment = utcnow() - timedelta(days=days_ago)
    db.session.add_all(
        Event(id=f"EV-{days_ago:g}-{n}", account_id=account_id, object_class="fulfillment_request",
              product_id="PRD-1", webhook_ids=[], created_at=moment)
        for n in range(count)
    )  # fmt: skip
    db.session.commit()


def attempts_of(hook_id: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Attempt).where(Attempt.webhook_id == hook_id))


# -- deleting ------------------------------------------------------------------------------


def test_deleting_answers_at_once_and_a_worker_removes_the_attempts(app, client, vendor):
    hook, other = make_webhook(vendor), make_webhook(vendor, label="Other")
    add_attempts(hook.id, 30)
    add_attempts(other.id, 3)
    attempt_id = db.session.scalar(select(Attempt.id).where(Attempt.webhook_id == hook.id).limit(1))
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}

    response = client.delete(f"/public/v1/notifications/webhooks/{hook.id}", headers=headers)

    assert response.status_code == 204
    assert db.session.get(Webhook, hook.id) is None and attempts_of(hook.id) == 30  # left for the worker
    assert db.session.get(DeletedWebhook, hook.id) is not None
    run_worker(app)
    assert attempts_of(hook.id) == 0 and attempts_of(other.id) == 3
    assert db.session.get(DeletedWebhook, hook.id) is None
    assert client.get(f"/public/v1/notifications/webhooks/{hook.id}/attempts", headers=headers).status_code == 404
    assert attempt_id is not None


def test_a_purge_job_lost_with_redis_is_done_by_the_hourly_prune(app, vendor):
    hook = make_webhook(vendor)
    add_attempts(hook.id, 12)
    service.delete_webhook(hook)
    Queue(dispatch.QUEUE_NAME, connection=dispatch.redis_connection()).empty()  # the job is lost
    assert attempts_of(hook.id) == 12
    assert maintenance.prune() == {
        "attempts": 0,
        "events": 0,
        "event_feeds": 0,
        "audit_entries": 0,
        "attempt_hours": 0,
        "deleted_webhook_attempts": 12,
    }
    assert attempts_of(hook.id) == 0 and db.session.scalar(select(func.count()).select_from(DeletedWebhook)) == 0


def test_a_new_webhook_never_takes_the_id_of_one_being_purged(monkeypatch, vendor):
    hook = make_webhook(vendor)
    add_attempts(hook.id, 2)
    gone = hook.id
    service.delete_webhook(hook)
    offered = iter([gone, "WH-111-222-333"])
    monkeypatch.setattr(service, "new_id", lambda prefix, groups: next(offered))
    assert make_webhook(vendor).id == "WH-111-222-333"
    assert attempts_of("WH-111-222-333") == 0


# -- pruning -------------------------------------------------------------------------------


def test_pruning_goes_in_short_batches_and_removes_old_events_too(monkeypatch, app, vendor):
    monkeypatch.setattr(maintenance, "BATCH", 4)
    app.config.update(WEBHOOK_ATTEMPT_RETENTION_DAYS=30, WEBHOOK_EVENT_RETENTION_DAYS=7)
    hook = make_webhook(vendor)
    add_attempts(hook.id, 11, days_ago=31, same_second=3)  # ties on the time across batches
    add_attempts(hook.id, 3, days_ago=29)
    add_events(vendor.account.id, 6, days_ago=8)
    add_events(vendor.account.id, 2, days_ago=6)

    with statements() as seen:
        removed = maintenance.prune()

    assert removed == {
        "attempts": 11,
        "events": 6,
        "event_feeds": 0,
        "audit_entries": 0,
        "attempt_hours": 0,
        "deleted_webhook_attempts": 0,
    }
    assert attempts_of(hook.id) == 3 and db.session.scalar(select(func.count()).select_from(Event)) == 2
    deletes = [statement for statement in seen if statement.lstrip().upper().startswith("DELETE FROM ATTEMPTS")]
    assert len(deletes) == 3  # 4 + 4 + 3: each batch in a transaction of its own
    assert db.session.get(MaintenanceLease, maintenance.PRUNE_LEASE).holder is None  # released


def test_one_worker_prunes_at_a_time_and_a_dead_ones_lease_expires(app, vendor):
    hook = make_webhook(vendor)
    add_attempts(hook.id, 5, days_ago=40)
    other_worker = maintenance.take_lease(maintenance.PRUNE_LEASE)
    assert other_worker is not None
    assert maintenance.take_lease(maintenance.PRUNE_LEASE) is None
    assert maintenance.prune() is None and attempts_of(hook.id) == 5

    lease = db.session.get(MaintenanceLease, maintenance.PRUNE_LEASE)
    lease.expires_at = utcnow() - timedelta(seconds=1)  # the other worker died
    db.session.commit()
    assert maintenance.prune() == {
        "attempts": 5,
        "events": 0,
        "event_feeds": 0,
        "audit_entries": 0,
        "attempt_hours": 0,
        "deleted_webhook_attempts": 0,
    }
    assert not maintenance.renew_lease(maintenance.PRUNE_LEASE, other_worker)  # it may not carry on


# -- pages read by key ---------------------------------------------------------------------


def test_api_offset_pages_cover_the_list_once_in_order(client, vendor):
    hook = make_webhook(vendor)
    add_attempts(hook.id, 23, same_second=4)
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    url = f"/public/v1/notifications/webhooks/{hook.id}/attempts"
    everything = [item["id"] for item in client.get(f"{url}?limit=100", headers=headers).get_json()]
    pages = [client.get(f"{url}?limit=5&offset={offset}", headers=headers) for offset in range(0, 25, 5)]
    assert [item["id"] for page in pages for item in page.get_json()] == everything
    assert len(everything) == 23 and everything == sorted(everything, reverse=True)
    assert [page.headers["Content-Range"] for page in pages[-2:]] == ["items 15-19/23", "items 20-22/23"]
    failures = client.get(f"{url}?eq(success,false)&limit=2&offset=2", headers=headers)
    assert failures.headers["Content-Range"] == "items 2-3/6" and len(failures.get_json()) == 2


def test_list_pages_cost_the_same_statements_for_5_or_25_webhooks(client, auth, vendor):
    auth.login()
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    client.get("/public/v1/notifications/webhooks", headers=headers)  # notes the token's first use
    counts = []
    for total in (5, 25):
        while db.session.scalar(select(func.count()).select_from(Webhook)) < total:
            make_webhook(vendor, product_id=vendor.products[total % 2].id)
        db.session.expire_all()
        with statements() as page_statements:
            assert client.get("/webhooks").status_code == 200
        with statements() as api_statements:
            assert len(client.get("/public/v1/notifications/webhooks", headers=headers).get_json()) == total
        counts.append((len(page_statements), len(api_statements)))
    assert counts[0] == counts[1], counts
    assert counts[1][0] <= 8, counts  # user, count, keys, rows, their products, rates, the products filter


# -- PostgreSQL: the indexes the pages read ------------------------------------------------


def explain(statement) -> str:
    compiled = statement.compile(db.engine)
    rows = db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.construct_params())
    return "\n".join(row[0] for row in rows)


@pytest.mark.postgresql
def test_deep_pages_and_counts_read_the_indexes_alone(postgresql, vendor):
    from webhookapp.infra import paging

    hook = make_webhook(vendor)
    insert_attempts(hook.id, 20000, failing_every=50)
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE attempts"))
    attempts = queries.attempts_query(hook).order_by(Attempt.started_at.desc(), Attempt.id.desc())
    deep = paging._keys(attempts, Attempt.id).offset(19_000).limit(100)
    plan = explain(deep)
    assert "Index Only Scan" in plan and "using ix_attempts_webhook_started_id" in plan, plan
    counted = paging._keys(queries.attempts_query(hook, "failure"), Attempt.id).limit(paging.COUNT_BOUND + 1)
    assert "ix_attempts_webhook_failures" in explain(counted)
    older = queries.attempts_query(hook, "failure").where(Attempt.started_at < utcnow()).order_by(
        Attempt.started_at.desc(), Attempt.id.desc()).limit(21)  # fmt: skip
    assert "ix_attempts_webhook_failures" in explain(older)
    db.session.execute(text(
        "INSERT INTO webhooks SELECT (jsonb_populate_record(w, jsonb_build_object('id', 'WH-X' || n,"
        " 'label', 'Orders ' || n))).* FROM webhooks AS w, generate_series(1, 5000) AS n WHERE w.id = :id"),
        {"id": hook.id})  # fmt: skip
    db.session.execute(text(
        "INSERT INTO webhook_search SELECT id, account_id, label || ' ' || id || ' ' || external_url"
        " FROM webhooks WHERE id LIKE 'WH-X%'"))  # fmt: skip
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE webhooks, webhook_search"))  # as autovacuum would
    # With the account's 5,001 webhooks counted by ANALYZE, not a single one (or whatever an earlier
    # test left in the statistics of the shared tables), the index must serve the list's order.
    webhooks = paging._keys(queries.list_query(vendor.account), Webhook.id).offset(10).limit(25)
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = explain(webhooks)
    assert "ix_webhooks_account_created" in plan and "Sort" not in plan, plan
    db.session.rollback()
    for term in ("fulfillment", "Orders 4321", "x4321"):  # no name; a part of a name, of an id
        plan = explain(paging._keys(queries.list_query(vendor.account, term), Webhook.id))
        assert "ix_webhook_search_text_trgm" in plan, plan  # not every name, id and URL of the account
    db.session.rollback()


@pytest.mark.postgresql
def test_webhook_rows_leave_room_for_in_place_updates(postgresql, vendor):
    options = db.session.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'webhooks'"))
    assert options == ["fillfactor=70"]


@pytest.mark.postgresql
def test_past_the_bound_the_api_total_is_an_estimate_and_says_so(monkeypatch, postgresql, client, vendor):
    from webhookapp.infra import paging

    monkeypatch.setattr(paging, "COUNT_BOUND", 5)
    hook = make_webhook(vendor)
    add_attempts(hook.id, 12)
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    url = f"/public/v1/notifications/webhooks/{hook.id}/attempts"
    full = client.get(f"{url}?limit=5", headers=headers)
    first, _, total = full.headers["Content-Range"].removeprefix("items ").partition("/")
    assert first == "0-4" and int(total) >= 6 and full.headers["X-Total-Estimated"] == "true"
    short = client.get(f"{url}?limit=5&offset=10", headers=headers)
    assert short.headers["Content-Range"] == "items 10-11/12" and "X-Total-Estimated" not in short.headers


@pytest.mark.postgresql
def test_events_update_the_webhook_rows_in_place(postgresql, vendor):
    """After the event that makes a trigger pending, the events it absorbs change no indexed
    column, and the room that the fillfactor leaves lets PostgreSQL update the rows in place."""
    from webhookapp.engine import triggers

    hook = make_webhook(vendor)
    db.session.execute(text(
        "INSERT INTO webhooks SELECT (jsonb_populate_record(w, jsonb_build_object('id', 'WH-X' || n))).*"
        " FROM webhooks AS w, generate_series(1, 200) AS n WHERE w.id = :id"), {"id": hook.id})  # fmt: skip
    db.session.commit()
    # The tests share the tables (tests/schema.py): the rows earlier tests deleted must not take
    # the room on these pages that an update in place needs.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM webhooks"))

    def prunable_after(xid: object) -> None:
        """Wait until no transaction older than ``xid`` runs, in any database of the server.

        An update is in place only if the page has room, which pruning the row versions that
        earlier events left dead makes. PostgreSQL prunes a version only once no snapshot may
        see it, and a snapshot's horizon is the oldest transaction running on the whole server:
        another test process's transaction in its own database would keep them (and
        ``pytest -n`` runs such processes beside this one)."""
        deadline = time.monotonic() + 30
        while not db.session.scalar(text("SELECT pg_snapshot_xmin(pg_current_snapshot()) > CAST(:xid AS xid8)"),
                                    {"xid": str(xid)}):  # fmt: skip
            db.session.commit()
            assert time.monotonic() < deadline, "a transaction of another process ran for 30 s"
            time.sleep(0.01)
        db.session.commit()

    def count_events(times: int) -> tuple[int, int]:
        """Count ``times`` events on all of them; returns (updates, of which HOT) meanwhile."""

        def counters() -> tuple[int, int]:
            db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
            row = db.session.execute(
                text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'webhooks'")
            ).one()
            db.session.commit()
            return row.n_tup_upd, row.n_tup_hot_upd

        before = counters()
        for _ in range(times):
            matched, _fresh = triggers.count_event(
                product_id=hook.product_id, object_class="fulfillment_request", account_id=vendor.account.id,
                now=utcnow(), api_url=None,
            )  # fmt: skip
            assert len(matched) == 201
            db.session.execute(text("SELECT pg_stat_force_next_flush()"))
            counted_by = db.session.scalar(text("SELECT pg_current_xact_id()"))
            db.session.commit()
            prunable_after(counted_by)
        after = counters()
        return after[0] - before[0], after[1] - before[1]

    updates, _hot = count_events(1)  # the trigger falls due: next_trigger_at, an indexed column, changes
    assert updates == 201
    updates, hot = count_events(20)
    # Measured on PostgreSQL 15: 96 % in place; without the fillfactor's room (fillfactor 100) 29 %.
    assert updates == 20 * 201 and hot >= 0.8 * updates, (updates, hot)


def test_a_prune_whose_lease_was_taken_over_stops_after_its_batch(monkeypatch, app, vendor):
    monkeypatch.setattr(maintenance, "BATCH", 2)
    hook = make_webhook(vendor)
    add_attempts(hook.id, 6, days_ago=40)
    renew = maintenance.renew_lease

    def taken_over_first(name: str, holder: str, seconds: float = maintenance.LEASE_SECONDS) -> bool:
        """Another worker takes the lease over (ours had expired) just before we renew it."""
        db.session.execute(text("UPDATE maintenance_leases SET holder = 'another' WHERE name = :n"), {"n": name})
        db.session.commit()
        return renew(name, holder, seconds)

    monkeypatch.setattr(maintenance, "renew_lease", taken_over_first)
    assert maintenance.prune() is None
    assert attempts_of(hook.id) == 4  # one batch, then it stopped
    assert db.session.get(MaintenanceLease, maintenance.PRUNE_LEASE).holder == "another"  # not released by us


@pytest.mark.postgresql
def test_metrics_count_the_webhooks_out_of_order_from_their_index(postgresql, vendor):
    from webhookapp.ops import state

    hooks = [make_webhook(vendor, label=f"hook {n}") for n in range(3)]
    hooks[0].out_of_order = hooks[1].out_of_order = True
    hooks[1].active = False  # disabled: not counted
    db.session.commit()
    assert db.session.scalar(state.out_of_order_query()) == 1
    db.session.execute(text("SET LOCAL enable_seqscan = off"))  # a small table: ask whether the index fits
    plan = explain(state.out_of_order_query())
    assert "ix_webhooks_out_of_order" in plan, plan  # not every webhook row
    db.session.rollback()


@pytest.mark.postgresql
def test_starting_a_recovery_counts_from_the_failures_alone(postgresql, vendor):
    """Its count reads the range's failed attempts and probes the next attempt of each: a month of
    a busy webhook's successes is not read (a window over every attempt took 800 ms at 100,000)."""
    from webhookapp.engine.recovery import selection

    hook = make_webhook(vendor)
    add_attempts(hook.id, 2000)  # every fourth failed, each attempt numbered one more: one trigger
    db.session.execute(text("ANALYZE attempts"))
    since, until = utcnow() - timedelta(days=1), utcnow()
    assert selection.count(hook, since, until) == 0  # one trigger still going: its failures are not final
    plan = explain(selection.count_query(hook, since, until))
    assert "ix_attempts_webhook_failures" in plan and "WindowAgg" not in plan, plan
    db.session.rollback()
