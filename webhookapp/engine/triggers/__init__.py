"""Trigger state: the one owner of every transition (docs/architecture.md, "Trigger state").

Each webhook is a doorbell. Its row holds at most one *pending* trigger (``next_trigger_at``,
after ``trigger_attempts`` failures) and at most one attempt *in flight* (``lease_*``), and may
be *out of order*. Every transition is a function here and one conditional UPDATE, so
concurrent web processes and workers never double-send or lose an increment; the database, not
Redis, decides what is due. Two transitions also run inside the PostgreSQL fast paths' own
statements: their SQL twins are in :mod:`webhookapp.engine.triggers.postgresql`, beside this module.

Multi-row writers lock webhook rows in id order, so that they never deadlock one another.
"""

from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import JSON, ColumnElement, Select, Update, bindparam, case, func, select, update

from webhookapp.core.times import utcnow
from webhookapp.engine.timing import LEASE_MARGIN_MAX
from webhookapp.engine.types import SNAPSHOT_COLUMNS, Claim, CountedEvent, Success, snapshot
from webhookapp.infra import metrics
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db
from webhookapp.models import UTCDateTime, Webhook

TABLE = Webhook.__table__


def retry_delay(failed_attempts: int) -> float:
    """Seconds before the next attempt after ``failed_attempts`` failures: base × factor^(n-1), capped."""
    config = current_app.config
    base = float(config["WEBHOOK_RETRY_BASE"])
    delay = base * float(config["WEBHOOK_RETRY_FACTOR"]) ** max(failed_attempts - 1, 0)
    return min(max(delay, base), float(config["WEBHOOK_RETRY_MAX_INTERVAL"]))


def lease_seconds() -> float:
    """How long a claimed attempt may take before the sweeper hands it to another worker.

    An attempt lasts at most about twice the delivery timeout (connect, then reads bounded by
    the timeout and the deadline), so the lease is that plus a margin.
    """
    timeout = float(current_app.config["WEBHOOK_DELIVERY_TIMEOUT"])
    return 2 * timeout + min(timeout, LEASE_MARGIN_MAX)


def _sendable() -> tuple[ColumnElement[bool], ...]:
    return (TABLE.c.active.is_(True), TABLE.c.out_of_order.is_(False), TABLE.c.type == "event")


def _due_conditions(now: datetime | ColumnElement[datetime]) -> tuple[ColumnElement[bool], ...]:
    return (*_sendable(), TABLE.c.next_trigger_at <= now, TABLE.c.lease_expires_at.is_(None))


# -- count an event --------------------------------------------------------------------------


@functools.cache
def _count_event_statement(platform: bool) -> Update:
    """Built once per kind of token: building a statement this size costs more than running it.
    Twin: :data:`webhookapp.engine.triggers.postgresql.COUNT_EVENT`; the webhooks it matches, the
    ``matched`` CTE of :data:`webhookapp.engine.ingest.postgresql.STATEMENT`."""
    now = bindparam("b_now", type_=UTCDateTime())
    conditions = [
        TABLE.c.product_id == bindparam("b_product_id"),
        TABLE.c.object_class == bindparam("b_object_class"),
        TABLE.c.type == "event",
        TABLE.c.active.is_(True),
    ]
    if not platform:
        conditions.append(TABLE.c.account_id == bindparam("b_account_id"))
    locked = (select(TABLE.c.id).where(*conditions).order_by(TABLE.c.id).with_for_update().cte("locked")).prefix_with(
        "MATERIALIZED"
    )
    return (
        update(TABLE)
        .where(TABLE.c.id.in_(select(locked.c.id)))
        .values(
            events_count=TABLE.c.events_count + 1,
            last_event_at=now,
            # Doorbell: a pending trigger absorbs the event; otherwise one is due now.
            next_trigger_at=func.coalesce(TABLE.c.next_trigger_at, now),
            last_event_api_url=bindparam("b_api_url"),
        )
        # RETURNING sees the new row: a trigger due at this very moment is the event's own.
        .returning(TABLE.c.id, TABLE.c.next_trigger_at, TABLE.c.out_of_order)
    )


def count_event(
    *, product_id: str, object_class: str, account_id: str | None, now: datetime, api_url: str | None
) -> CountedEvent:
    """Count an event on the active event webhooks it matches (of ``account_id``; of every
    account when None, for a platform token), in the caller's transaction.

    Returns the matched webhook ids, and those whose trigger the event made due: the others had
    one pending already, and whoever made it pending has woken the workers (or the sweeper will).
    """
    counted = db.session.execute(
        _count_event_statement(account_id is None),
        {"b_product_id": product_id, "b_object_class": object_class, "b_account_id": account_id, "b_now": now,
         "b_api_url": api_url},
    ).all()  # fmt: skip
    matched = sorted(row.id for row in counted)
    fresh = sorted(row.id for row in counted if row.next_trigger_at == now and not row.out_of_order)
    return CountedEvent(matched, fresh)


def note_event(webhook_id: str, now: datetime) -> None:
    """Count an event that needs no trigger (a validation call answered at once)."""
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(events_count=Webhook.events_count + 1, last_event_at=now)
        .execution_options(synchronize_session=False)
    )


# -- make due, enable, disable ---------------------------------------------------------------


def make_due_now(webhook: Webhook, *, count_event: bool) -> None:
    """Trigger Now and re-enabling: the pending trigger (created if needed) falls due at once."""
    now = utcnow()
    values: dict[str, Any] = {"next_trigger_at": now, "out_of_order": False}
    if webhook.out_of_order:
        values["trigger_attempts"] = 0
    if count_event:
        values.update(events_count=Webhook.events_count + 1, last_event_at=now)
    db.session.execute(
        update(Webhook).where(Webhook.id == webhook.id).values(values).execution_options(synchronize_session=False)
    )


def set_enabled(webhook: Webhook, enabled: bool) -> None:
    """Enable or disable, in the caller's transaction.

    Enabling brings an Out-of-order webhook back: a trigger left pending (events arrived
    meanwhile) falls due at once. Disabling drops the pending trigger; an attempt in flight ends
    as it will, and no retry follows it (see :func:`finish`).
    """
    if enabled and webhook.out_of_order:
        if webhook.next_trigger_at is not None:
            make_due_now(webhook, count_event=False)
        webhook.out_of_order = False
        webhook.trigger_attempts = 0
    elif not enabled:
        webhook.next_trigger_at = None
        webhook.trigger_attempts = 0
    webhook.active = enabled


def due_now(webhook: Webhook) -> bool:
    """Whether the webhook (as last loaded) has a trigger that should be sent now."""
    return webhook.active and webhook.next_trigger_at is not None and webhook.next_trigger_at <= utcnow()


# -- claim -----------------------------------------------------------------------------------


@functools.cache
def _claim_statement(of_given_webhooks: bool) -> Update:
    """The claim, built once: a delivery job claims many times a second, and building and keying a
    statement this size costs more than running it."""
    now = bindparam("now", type_=UTCDateTime())
    candidates = (
        select(TABLE.c.id)
        .where(*_due_conditions(now))
        .order_by(TABLE.c.next_trigger_at, TABLE.c.id)
        .limit(bindparam("limit"))
        # SKIP LOCKED lets claimers on PostgreSQL pass each other.
        .with_for_update(skip_locked=True)
    )
    if of_given_webhooks:
        candidates = candidates.where(TABLE.c.id.in_(bindparam("webhook_ids", expanding=True)))
    # MATERIALIZED: PostgreSQL would otherwise re-run the subquery per row and claim past the limit.
    chosen = candidates.cte("chosen").prefix_with("MATERIALIZED")
    return (
        update(TABLE)
        # The repeated conditions make the UPDATE itself the arbiter wherever a snapshot is stale.
        .where(TABLE.c.id.in_(select(chosen.c.id)), *_due_conditions(now))
        .values(
            lease_id=bindparam("lease_id"),
            lease_expires_at=bindparam("lease_expires_at", type_=UTCDateTime()),
            lease_attempt=TABLE.c.trigger_attempts + 1,
            next_trigger_at=None,
            trigger_attempts=0,
        )
        .returning(*(TABLE.c[name] for name in SNAPSHOT_COLUMNS), TABLE.c.lease_attempt, TABLE.c.last_event_api_url)
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
    if webhook_ids:
        params["webhook_ids"] = list(webhook_ids)
    # One statement in autocommit: a single round trip to the database (no BEGIN, no COMMIT),
    # which is most of the time between a doorbell and the send.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        claimed = connection.execute(_claim_statement(bool(webhook_ids)), params).all()
    return [
        Claim(webhook=snapshot(row), lease_id=lease_id, attempt=row.lease_attempt, api_url=row.last_event_api_url,
              claimed_at=now)
        for row in claimed
    ]  # fmt: skip


# -- succeed, fail and schedule a retry, go out of order -------------------------------------


RELEASED_LEASE: dict[str, int | None] = {"lease_expires_at": None, "lease_attempt": 0, "lease_id": None}
"""A webhook's lease columns once no attempt is in flight: what every release writes, here and in
the SQL of :data:`webhookapp.engine.triggers.postgresql.SUCCEED`."""


def _ours() -> ColumnElement[bool]:
    """The lease is released only by the claim that holds it, so a late outcome after the sweeper
    has handed the trigger on changes nothing but the counts."""
    return TABLE.c.lease_id == bindparam("lease")


def _release() -> dict[str, Any]:
    ours = _ours()
    return {name: case((ours, released), else_=TABLE.c[name]) for name, released in RELEASED_LEASE.items()}


@functools.cache
def _succeed_statement() -> Update:
    """Count a success and release the lease if still ours: built once, run as an executemany.
    Twin: :data:`webhookapp.engine.triggers.postgresql.SUCCEED`."""
    return (
        update(TABLE)
        .where(TABLE.c.id == bindparam("webhook"))
        .values(
            triggers_count=TABLE.c.triggers_count + 1,
            success_count=TABLE.c.success_count + 1,
            failures_since_last_success=0,
            last_success_at=bindparam("at", type_=UTCDateTime()),
            last_success_info=bindparam("info", type_=JSON()),
            **_release(),
        )
    )


def succeed(successes: list[Success]) -> None:
    """Successful attempts of distinct webhooks, in the caller's transaction: count each and
    release its lease if still ours. Rows are written in id order."""
    if successes:
        ordered = sorted(successes, key=lambda item: item.webhook_id)
        params = [
            {"webhook": item.webhook_id, "lease": item.lease_id, "at": item.started_at, "info": item.summary}
            for item in ordered
        ]
        db.session.execute(_succeed_statement(), params)


def finish(claim: Claim, success: bool) -> datetime | None:
    """Release the lease of an attempt already counted, in the caller's transaction, and decide
    what comes next. Returns the due time of a scheduled retry, if any.

    A failure schedules a retry after :func:`retry_delay`; past ``WEBHOOK_MAX_ATTEMPTS`` failures
    the webhook goes Out of order, and a trigger pending meanwhile waits for re-enabling.
    Events that arrived during the attempt fold into the retry.
    """
    retry_at = None
    values: dict[str, Any] = dict(RELEASED_LEASE)
    if not success:
        if claim.attempt >= int(current_app.config["WEBHOOK_MAX_ATTEMPTS"]):
            values["out_of_order"] = True
        else:
            retry_at = utcnow() + timedelta(seconds=retry_delay(claim.attempt))
            values["next_trigger_at"] = case((Webhook.active.is_(True), retry_at), else_=None)
            values["trigger_attempts"] = claim.attempt
    released = db.session.execute(
        update(Webhook)
        .where(Webhook.id == claim.webhook.id, Webhook.lease_id == claim.lease_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if not success and rowcount(released):  # the transition happened: the lease was still ours
        (metrics.RETRIES_SCHEDULED if retry_at else metrics.WENT_OUT_OF_ORDER).inc()
    return retry_at


# -- reclaim an expired lease ----------------------------------------------------------------


def _back_to_pending(now: datetime) -> dict[str, Any]:
    """An attempt in flight that will not end (its lease ran out, or its worker stops) becomes a
    pending trigger again, due at once: its lease goes, and the failed attempts before it count."""
    return {
        **RELEASED_LEASE,
        # SET expressions see the old row: keep a pending trigger's count, else resume the lost one's.
        "trigger_attempts": case(
            (TABLE.c.next_trigger_at.is_(None), TABLE.c.lease_attempt - 1), else_=TABLE.c.trigger_attempts
        ),
        # A disabled webhook gets no trigger back: disabled webhooks send nothing.
        "next_trigger_at": case((TABLE.c.active.is_(True), func.coalesce(TABLE.c.next_trigger_at, now)), else_=None),
    }


def reclaim_expired() -> int:
    """Turn attempts whose lease ran out (a worker died) back into due triggers, and commit;
    returns how many. A disabled webhook gets no trigger back: disabled webhooks send nothing.
    """
    now = utcnow()
    expired = (
        select(TABLE.c.id)
        .where(TABLE.c.lease_expires_at < now)
        .order_by(TABLE.c.id)
        .with_for_update(skip_locked=True)
        .cte("expired")
        .prefix_with("MATERIALIZED")
    )
    reclaimed = db.session.execute(
        update(TABLE)
        .where(TABLE.c.id.in_(select(expired.c.id)), TABLE.c.lease_expires_at < now)
        .values(_back_to_pending(now))
        .returning(TABLE.c.id)  # counted from RETURNING: SQLite reports no rowcount for WITH … UPDATE
    ).all()
    db.session.commit()
    return len(reclaimed)


def hand_back(claims: list[Claim]) -> int:
    """Give claimed triggers that were never sent back to the pending state, due now, as the
    sweeper would once their lease ran out (a stopping worker; docs/architecture.md, "Reliability").
    Only leases still held change; commits and returns how many did. Rows are written in id order."""
    if not claims:
        return 0
    now = utcnow()
    statement = update(TABLE).where(TABLE.c.id == bindparam("b_id"), _ours()).values(_back_to_pending(now))
    rows = [{"b_id": claim.webhook.id, "lease": claim.lease_id} for claim in claims]
    result = db.session.execute(statement, sorted(rows, key=lambda row: row["b_id"]))
    db.session.commit()
    return rowcount(result)


def due_count_query(now: datetime) -> Select[int]:
    """How many triggers a claim at ``now`` would find (the metrics' due gauge): the pending
    ones alone, read through ``ix_webhooks_due``."""
    return select(func.count()).select_from(TABLE).where(*_due_conditions(now))


def next_due_query() -> Select[datetime]:
    """The earliest due time of a pending trigger that could be sent (past times included)."""
    return select(func.min(TABLE.c.next_trigger_at)).where(*_sendable(), TABLE.c.lease_expires_at.is_(None))


def next_due_at() -> datetime | None:
    """When the earliest pending trigger that could be sent falls due (past times included)."""
    return db.session.scalar(next_due_query())
