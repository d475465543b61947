"""The parts of ``bench.scale`` measured in this process, on the database directly: claims and the
next due time, the background purge after deletes, pruning; and the data-dependent set-up of
requests (a deep delivery page's link, a copy of the heavy webhook to delete)."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench import scale_data
from bench.common import SECRET_KEY

PER_PAGE = 20
AUDIT_DEPTH = 10_000 / 560_000
"""How deep the audit trail's offset page is: offset 10,000 of the big account's entries at size 1."""


@contextlib.contextmanager
def app_on(url: str, **settings: Any) -> Iterator[Any]:
    """The app on ``url`` with its context pushed (no Redis is needed for what is timed here)."""
    from webhookapp import create_app
    from webhookapp.infra.extensions import db

    app = create_app("development", {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET_KEY, **settings})
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def deep_delivery_link(url: str, hops: int, legacy: bool = False) -> str:
    """The details page ``hops`` pages back from the newest, as its Older links lead there."""
    heavy = scale_data.HEAVY_WEBHOOK
    engine = scale_data.engine_for(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM attempts WHERE webhook_id = :w"), {"w": heavy}).scalar()
        hops = max(min(hops, (count - 1) // PER_PAGE), 1)
        row = connection.execute(
            text(
                "SELECT started_at, id FROM attempts WHERE webhook_id = :w ORDER BY started_at DESC, id DESC "
                "OFFSET :skip LIMIT 1"
            ),
            {"w": heavy, "skip": hops * PER_PAGE - 1},
        ).one()
    engine.dispose()
    if legacy:
        return f"/webhooks/{heavy}?page={hops + 1}"
    from webhookapp.infra.paging import cursor

    return f"/webhooks/{heavy}?before={cursor(row.started_at.replace(tzinfo=UTC), row.id)}&n={hops * PER_PAGE + 1}"


def depths(url: str) -> dict[str, int | str]:
    """Where the deep pages are in this database: page 5/8 of the big account's webhook list,
    95 % of the way down its API list (or a full page from the end), the last 100 attempts of
    the heavy webhook, the audit trail :data:`AUDIT_DEPTH` of the way down; and the big
    account's first audit entry, and the date a week ago; a
    week-old event the platform posted for the big account (its id, object id and client id), a
    day's range of events a week ago, a day-old trigger attempt of the heavy webhook (the events it
    carried) and the ids of the list's first page (its live cells)."""
    engine = scale_data.engine_for(url)
    with engine.connect() as connection:
        webhooks = connection.execute(
            text("SELECT count(*) FROM webhooks WHERE account_id = :a"), {"a": scale_data.BIG_ACCOUNT}
        ).scalar()
        attempts = connection.execute(
            text("SELECT count(*) FROM attempts WHERE webhook_id = :w"), {"w": scale_data.HEAVY_WEBHOOK}
        ).scalar()
        audit_entry, audit_entries = connection.execute(
            text("SELECT min(id), count(*) FROM audit_entries WHERE account_id = :a"), {"a": scale_data.BIG_ACCOUNT}
        ).one()
        # A week-old event the platform posted for the big account's webhooks, with a client id.
        fed = connection.execute(
            text(
                "SELECT e.id, e.object_id, e.client_event_id FROM event_feeds f JOIN events e ON e.id = f.event_id"
                " WHERE f.account_id = :a AND f.created_at < now() - interval '7 days' AND e.client_event_id"
                " IS NOT NULL ORDER BY f.created_at DESC LIMIT 1"
            ),
            {"a": scale_data.BIG_ACCOUNT},
        ).one()
        carrier = connection.execute(
            text(
                "SELECT max(id) FROM attempts WHERE webhook_id = :w AND kind = 'trigger'"
                " AND started_at < now() - interval '1 day'"
            ),
            {"w": scale_data.HEAVY_WEBHOOK},
        ).scalar()
        listed = connection.execute(
            text("SELECT string_agg(id, ',') FROM (SELECT id FROM webhooks WHERE account_id = :a"
                 " ORDER BY id LIMIT 25) AS page"), {"a": scale_data.BIG_ACCOUNT},
        ).scalar()  # fmt: skip
    engine.dispose()
    week_ago = datetime.now(UTC) - timedelta(days=7)
    return {
        "event": fed.id,
        "object_id": fed.object_id,
        "client_id": fed.client_event_id,
        "carrier": carrier or 0,
        "listed_ids": listed or "",
        "day_from": week_ago.replace(microsecond=0, tzinfo=None).isoformat(),
        "day_to": (week_ago + timedelta(days=1)).replace(microsecond=0, tzinfo=None).isoformat(),
        "audit_entry": audit_entry or 0,
        "week_ago": (datetime.now(UTC) - timedelta(days=7)).date().isoformat(),
        "list_page": max(round(webhooks / 25 * 5 / 8), 1),
        "webhook_offset": max(min(round(webhooks * 0.95), webhooks - 100), 0),  # a full page of 100
        "attempt_offset": max(attempts - 100, 0),
        # 10,000 of the big account's 560,000 entries at size 1: as deep, 100 of 5,600 at 0.01.
        "audit_offset": round((audit_entries or 0) * AUDIT_DEPTH),
    }


def end_recoveries(url: str, webhook_id: str) -> None:
    """Cancel the webhook's running recovery (a second one is refused while it runs)."""
    engine = scale_data.engine_for(url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE recoveries SET state = 'cancelled' WHERE webhook_id = :w AND state = 'running'"),
            {"w": webhook_id},
        )
    engine.dispose()


def copy_heavy_webhook(url: str) -> str:
    """A copy of the heavy webhook with all its attempts; returns its id."""
    victim = f"WH-9{secrets.randbelow(10**8):08d}"
    engine = scale_data.engine_for(url)
    with engine.begin() as connection:
        columns = [
            row[0]
            for row in connection.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'attempts' "
                    "AND column_name NOT IN ('id', 'webhook_id') ORDER BY ordinal_position"
                )
            )
        ]
        connection.execute(text("CREATE TEMP TABLE victim ON COMMIT DROP AS SELECT * FROM webhooks WHERE id = :h"),
                           {"h": scale_data.HEAVY_WEBHOOK})  # fmt: skip
        connection.execute(text("UPDATE victim SET id = :v, label = 'Copy to delete'"), {"v": victim})
        connection.execute(text("INSERT INTO webhooks SELECT * FROM victim"))
        listed = ", ".join(columns)
        copy = f"INSERT INTO attempts (webhook_id, {listed}) SELECT :v, {listed} FROM attempts WHERE webhook_id = :h"
        connection.execute(
            text(copy),
            {"v": victim, "h": scale_data.HEAVY_WEBHOOK},
        )
    engine.dispose()
    return victim


def purge_deleted(url: str) -> float:
    """Seconds the workers' background purge takes for the deletes left behind (0 where deleting
    removes the attempts at once)."""
    try:
        from webhookapp.engine import maintenance
    except ImportError:  # an older tree: nothing was left behind
        return 0.0
    with app_on(url):
        began = time.monotonic()
        maintenance.purge_deleted()
        return time.monotonic() - began


def claim_timings(url: str, repeat: int) -> dict[str, list[float]]:
    """Milliseconds of a claim that finds nothing due (a worker's poll, most of the time: what the
    number of webhooks could slow down) and of the next due time,
    as the worker sees them (a round trip and SQLAlchemy included) and as the server spends them
    (``EXPLAIN ANALYZE``'s execution time)."""
    from webhookapp.core.times import utcnow
    from webhookapp.engine import triggers
    from webhookapp.engine.triggers import claims
    from webhookapp.infra.extensions import db

    timings: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        timings.setdefault(name, []).append(value)

    with app_on(url):
        while triggers.claim_due(1000):  # the requests' events left triggers due: no worker ran them
            pass
        params = {"now": utcnow(), "limit": 16, "lease_id": "x", "lease_expires_at": utcnow()}
        for _ in range(repeat + 2):
            began = time.perf_counter()
            triggers.claim_due(16)
            note("claim (nothing due), in the worker", (time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            triggers.next_due_at()
            note("next due time, in the worker", (time.perf_counter() - began) * 1000)
            for name, statement in (
                ("claim", claims._claim_statement(False)),
                ("next due time", triggers.next_due_query()),
            ):
                compiled = statement.compile(db.engine)
                plan = (
                    db.session.connection()
                    .exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}", compiled.construct_params(params))
                    .scalar()
                )
                note(f"{name}, in PostgreSQL", plan[0]["Execution Time"])
            db.session.rollback()
    return {name: values[2:] for name, values in timings.items()}


def hot_report(url: str, events: int = 30) -> list[list[str]]:
    """Count ``events`` events on the big account's first product (its billing-request webhooks)
    in this process; returns how many webhook row updates were in place (HOT) and how much the
    matching index grew."""
    from webhookapp.core.times import utcnow
    from webhookapp.engine import triggers
    from webhookapp.infra.extensions import db

    def counters() -> tuple[int, int, int]:
        db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = db.session.execute(
            text(
                "SELECT n_tup_upd, n_tup_hot_upd, pg_relation_size('ix_webhooks_match') AS size "
                "FROM pg_stat_user_tables WHERE relname = 'webhooks'"
            )
        ).one()
        db.session.commit()
        return row.n_tup_upd, row.n_tup_hot_upd, row.size

    with app_on(url):
        before = counters()
        matched = 0
        for _ in range(events):
            matched = len(
                triggers.count_event(
                    product_id="PRD-000000001", object_class="billing_request", account_id=scale_data.BIG_ACCOUNT,
                    now=utcnow(), api_url=None,
                )[0]
            )  # fmt: skip
            db.session.execute(text("SELECT pg_stat_force_next_flush()"))
            db.session.commit()
        time.sleep(1.5)
        after = counters()
    updates, hot = after[0] - before[0], after[1] - before[1]
    return [
        [f"{events} events × {matched} webhooks: row updates in place (HOT)", f"{hot:,} of {updates:,}"],
        ["growth of the matching index (ix_webhooks_match)", f"{(after[2] - before[2]) // 1024:,} kB"],
    ]


def prune_report(url: str, days: float = 15) -> list[list[str]]:
    """Prune what is older than ``days``, as the hourly job does, watching the longest
    transaction; returns table rows."""
    engine = scale_data.engine_for(url)
    database = engine.url.database
    watch = {"longest": 0.0}
    stop = threading.Event()

    def watcher() -> None:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            while not stop.is_set():
                age = connection.execute(
                    text(
                        "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0) "
                        "FROM pg_stat_activity "
                        "WHERE datname = :d AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                    ),
                    {"d": database},
                ).scalar()
                watch["longest"] = max(watch["longest"], float(age))
                stop.wait(0.05)

    with engine.connect() as connection:
        wal_before = connection.execute(text("SELECT pg_current_wal_lsn()")).scalar()
    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    settings = {"WEBHOOK_ATTEMPT_RETENTION_DAYS": days, "WEBHOOK_EVENT_RETENTION_DAYS": days}
    with app_on(url, **settings):
        began = time.monotonic()
        try:
            from webhookapp.engine import maintenance

            removed = maintenance.prune()
        except ImportError:  # an older tree
            from webhookapp.engine import outcomes

            removed = {"attempts": outcomes.prune_attempts()}
        elapsed = time.monotonic() - began
    stop.set()
    thread.join()
    time.sleep(1.5)  # the server publishes table statistics about once a second
    with engine.connect() as connection:
        wal = connection.execute(
            text("SELECT pg_current_wal_lsn() - CAST(:lsn AS pg_lsn)"), {"lsn": wal_before}
        ).scalar()
        dead = connection.execute(
            text("SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE relname IN ('attempts', 'events')")
        ).all()
        connection.execute(text("DROP TABLE IF EXISTS bench_scale"))  # half the data is gone: load again next time
        connection.commit()
    # What autovacuum then has to do (it is off on this server): no transaction of the prune
    # holds the dead rows back, so one pass clears them.
    began = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM attempts, events"))
    vacuumed = time.monotonic() - began
    time.sleep(1.5)
    with engine.connect() as connection:
        left = connection.execute(
            text("SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE relname IN ('attempts', 'events')")
        ).scalar()
    engine.dispose()
    return [
        ["removed", ", ".join(f"{count:,} {what}" for what, count in (removed or {}).items())],
        ["time", f"{elapsed:.1f} s"],
        ["longest transaction", f"{watch['longest']:.2f} s"],
        ["WAL written", f"{int(wal) / 2**20:,.0f} MB"],
        *[[f"dead rows left in {row.relname}", f"{row.n_dead_tup:,}"] for row in dead],
        ["VACUUM of both tables afterwards", f"{vacuumed:.1f} s, {left or 0:,} dead rows left"],
    ]
