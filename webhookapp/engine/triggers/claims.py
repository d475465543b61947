"""The claim (docs/architecture.md, "Trigger state"): moving due triggers into flight under a
lease, in one statement; on PostgreSQL, on the raw driver connection with a commit that does not
wait for the disk (:func:`_claim_sql` says why that loses nothing)."""

from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import (
    Engine,
    String,
    Update,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    select,
    true,
    update,
)

from webhookapp.core.times import aware_utc, naive_utc, utcnow
from webhookapp.engine.reconnect import retrying
from webhookapp.engine.triggers.schedule import TABLE, due_conditions, lease_seconds
from webhookapp.engine.types import SNAPSHOT_COLUMNS, Claim, snapshot
from webhookapp.infra.database import raw_autocommit
from webhookapp.infra.extensions import db, generic_plans_engine
from webhookapp.models import UTCDateTime


@functools.cache
def _claim_statement(of_given_webhooks: bool, relaxed: bool = False) -> Update:
    """The claim, built once: a delivery job claims many times a second, and building and keying a
    statement this size costs more than running it. ``relaxed`` (PostgreSQL): see :func:`_claim_sql`."""
    now = bindparam("now", type_=UTCDateTime())
    candidates = (
        select(TABLE.c.id)
        .where(*due_conditions(now))
        .order_by(TABLE.c.next_trigger_at, TABLE.c.id)
        .limit(bindparam("limit"))
        # SKIP LOCKED lets claimers on PostgreSQL pass each other.
        .with_for_update(skip_locked=True)
    )
    if of_given_webhooks:
        candidates = candidates.where(TABLE.c.id.in_(bindparam("webhook_ids", expanding=True)))
    if relaxed:
        # The transaction's commit does not wait for the WAL flush (set_config's third argument:
        # for this transaction only). Evaluated per candidate row, which is cheap; with none due
        # the statement writes nothing and its commit waits for nothing anyway.
        candidates = candidates.where(func.set_config("synchronous_commit", "off", true()).is_not(None))
    # MATERIALIZED: PostgreSQL would otherwise re-run the subquery per row and claim past the limit.
    chosen = candidates.cte("chosen").prefix_with("MATERIALIZED")
    # Joined by primary key (UPDATE … FROM chosen): each chosen row is one probe of pk_webhooks.
    # The relaxed claim runs on connections that keep a generic plan (:mod:`webhookapp.infra.database`),
    # which knows neither the limit nor how many are due; there the chosen ids are an array, which
    # it probes pk_webhooks with whatever its estimate (a join, planned for a tenth of the table,
    # was a sequential scan: docs/performance.md, "Planned once").
    joined = TABLE.c.id == (any_(func.array(select(chosen.c.id).scalar_subquery())) if relaxed else chosen.c.id)
    return (
        update(TABLE)
        # The repeated conditions make the UPDATE itself the arbiter wherever a snapshot is stale;
        # as one CASE they are checked on the rows found, never used to find them. As plain terms
        # they let PostgreSQL reach the rows through ix_webhooks_due and match every due row
        # against every chosen one, which it does when its statistics say few are due
        # (docs/performance.md, "The claim's join").
        .where(joined, case((and_(*due_conditions(now)), true()), else_=false()))
        .values(
            lease_id=bindparam("lease_id"),
            lease_expires_at=bindparam("lease_expires_at", type_=UTCDateTime()),
            lease_attempt=TABLE.c.trigger_attempts + 1,
            next_trigger_at=None,
            trigger_attempts=0,
            # A trigger's first claim names its message; its retries (and a reclaim) keep the name.
            # The name comes from what was committed before the claim (the serial counts the
            # triggers that ended), so a claim whose commit is lost names the same message again.
            trigger_message_id=func.coalesce(
                TABLE.c.trigger_message_id,
                literal("msg_") + TABLE.c.id + "_" + cast(TABLE.c.trigger_serial, String()),
            ),
        )
        .returning(
            *(TABLE.c[name] for name in SNAPSHOT_COLUMNS),
            TABLE.c.lease_attempt,
            TABLE.c.last_event_api_url,
            TABLE.c.trigger_traceparent,
            TABLE.c.trigger_message_id,
        )
    )


def claim_due(limit: int, webhook_ids: list[str] | None = None) -> list[Claim]:
    """Atomically move up to ``limit`` due triggers into flight (those of ``webhook_ids`` only, if given)."""
    if limit <= 0:
        return []
    now = utcnow()
    lease_id = secrets.token_hex(8)
    params: dict[str, Any] = {
        "now": now,
        "limit": limit,
        "lease_id": lease_id,
        "lease_expires_at": now + timedelta(seconds=lease_seconds()),
    }
    engine = db.engine
    if webhook_ids:
        params["webhook_ids"] = list(webhook_ids)
    elif engine.dialect.name == "postgresql":
        return [_claim(row, lease_id, now) for row in _claim_relaxed(generic_plans_engine(), params)]
    # One statement in autocommit: a single round trip to the database (no BEGIN, no COMMIT),
    # which is most of the time between a doorbell and the send.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        claimed = connection.execute(_claim_statement(bool(webhook_ids)), params).all()
    return [_claim(row, lease_id, now) for row in claimed]


def _claim(row: Any, lease_id: str, now: datetime) -> Claim:
    return Claim(
        webhook=snapshot(row), lease_id=lease_id, attempt=row.lease_attempt, api_url=row.last_event_api_url,
        claimed_at=now, traceparent=row.trigger_traceparent, message_id=row.trigger_message_id,
    )  # fmt: skip


@functools.cache
def _claim_sql(engine: Engine) -> tuple[str, dict[str, Any]]:
    """The relaxed claim as the driver's SQL and its constant parameters, compiled once.

    On PostgreSQL the claim is the step between a doorbell and the send, so it runs on the raw
    driver connection (as the event API's statement does: SQLAlchemy's connection and result
    cost more client CPU than the statement) and its commit does not wait for the WAL flush. A
    claim lost in a database crash leaves its trigger due, as a lost lease does (the sweeper
    hands it on), and its message keeps its name (the serial). Its outcome, written later,
    commits durably, and with it everything before it in the WAL, the claim included.
    """
    compiled = _claim_statement(False, relaxed=True).compile(dialect=engine.dialect)
    return compiled.string, dict(compiled.params)


def _claim_relaxed(engine: Engine, params: dict[str, Any]) -> list[Any]:
    sql, constants = _claim_sql(engine)
    # The raw statement bypasses the column types: naive UTC in, aware UTC back out.
    values = {**constants, **params, "now": naive_utc(params["now"]),
              "lease_expires_at": naive_utc(params["lease_expires_at"])}  # fmt: skip
    return retrying(
        lambda: _run_claim(engine, sql, values),
        # unreachable() knows the driver's own error too: the statement runs on a raw connection.
        recover=engine.dispose,  # every pooled connection died with this one
    )


def _run_claim(engine: Engine, sql: str, values: dict[str, Any]) -> list[Any]:
    with raw_autocommit(engine, "claim_cursor") as cursor:
        cursor.row_factory = psycopg.rows.namedtuple_row
        rows: list[Any] = cursor.execute(sql, values, prepare=True).fetchall()
    return [
        row._replace(last_success_at=_aware(row.last_success_at), last_failure_at=_aware(row.last_failure_at))
        for row in rows
    ]


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else aware_utc(value)
