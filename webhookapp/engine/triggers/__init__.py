"""Trigger state: the one owner of every transition (docs/architecture.md, "Trigger state").

Each webhook is a doorbell. Its row holds at most one *pending* trigger (``next_trigger_at``,
after ``trigger_attempts`` failures) and at most one attempt *in flight* (``lease_*``), and may
be *out of order*. Every transition is a function here and one conditional UPDATE, so
concurrent web processes and workers never double-send or lose an increment; the database, not
Redis, decides what is due. Two transitions also run inside the PostgreSQL fast paths' own
statements: their SQL twins are in :mod:`webhookapp.engine.triggers.postgresql`, beside this module.

This module counts events and makes triggers due; :mod:`.leases` moves them into flight and
out again; :mod:`.schedule` says when they fall due. Callers use the names re-exported here.

Multi-row writers lock webhook rows in id order, so that they never deadlock one another.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import String, Update, bindparam, case, func, inspect, null, select, update

from webhookapp.core.times import utcnow
from webhookapp.engine.triggers.claims import claim_due
from webhookapp.engine.triggers.leases import (
    END_OF_TRIGGER,
    GONE,
    GONE_REASON,
    RELEASED_LEASE,
    finish,
    hand_back,
    reclaim_expired,
    succeed,
)
from webhookapp.engine.triggers.schedule import (
    TABLE,
    asked_delay,
    due_count_query,
    lease_margin,
    lease_seconds,
    next_due_at,
    next_due_query,
    retry_delay,
)
from webhookapp.engine.types import CountedEvent
from webhookapp.infra.extensions import db
from webhookapp.models import UTCDateTime, Webhook

__all__ = [
    "GONE",
    "GONE_REASON",
    "RELEASED_LEASE",
    "asked_delay",
    "claim_due",
    "count_event",
    "due_count_query",
    "due_now",
    "finish",
    "hand_back",
    "lease_margin",
    "lease_seconds",
    "make_due_now",
    "next_due_at",
    "next_due_query",
    "note_event",
    "reclaim_expired",
    "retry_delay",
    "set_enabled",
    "succeed",
]


# -- count an event --------------------------------------------------------------------------


@functools.cache
def _count_event_statement(platform: bool) -> Update:
    """Built once per kind of token: building a statement this size costs more than running it.
    Twin: :data:`webhookapp.engine.triggers.postgresql.COUNT_EVENT`; the webhooks it matches, the
    ``matched`` CTE of :data:`webhookapp.engine.ingest.statements.STATEMENT`."""
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
            # The trace context of the event that makes the trigger due (NULL while tracing is off).
            trigger_traceparent=case(
                (TABLE.c.next_trigger_at.is_(None), bindparam("b_traceparent", type_=String())),
                else_=TABLE.c.trigger_traceparent,
            ),
        )
        # RETURNING sees the new row: a trigger due at this very moment is the event's own.
        .returning(TABLE.c.id, TABLE.c.next_trigger_at, TABLE.c.out_of_order)
    )


def count_event(
    *,
    product_id: str,
    object_class: str,
    account_id: str | None,
    now: datetime,
    api_url: str | None,
    traceparent: str | None = None,
) -> CountedEvent:
    """Count an event on the active event webhooks it matches (of ``account_id``; of every
    account when None, for a platform token), in the caller's transaction.

    Returns the matched webhook ids, and those whose trigger the event made due: the others had
    one pending already, and whoever made it pending has woken the workers (or the sweeper will).
    """
    counted = db.session.execute(
        _count_event_statement(account_id is None),
        {"b_product_id": product_id, "b_object_class": object_class, "b_account_id": account_id, "b_now": now,
         "b_api_url": api_url, "b_traceparent": traceparent},
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
    values: dict[str, Any] = {
        "next_trigger_at": now,
        "out_of_order": False,
        # A trigger made here is no event's: it has no trace context to keep.
        "trigger_traceparent": case((Webhook.next_trigger_at.is_(None), null()), else_=Webhook.trigger_traceparent),
    }
    if webhook.out_of_order:
        values["trigger_attempts"] = 0
    if count_event:  # Trigger Now: an event counted without one stored, so counted apart too
        values.update(
            events_count=Webhook.events_count + 1, trigger_now_count=Webhook.trigger_now_count + 1, last_event_at=now
        )
    db.session.execute(
        update(Webhook).where(Webhook.id == webhook.id).values(values).execution_options(synchronize_session=False)
    )


def set_enabled(webhook: Webhook, enabled: bool) -> None:
    """Enable or disable, in the caller's transaction.

    Enabling brings an Out-of-order webhook back: a trigger left pending (events arrived
    meanwhile) falls due at once. Disabling drops the pending trigger; an attempt in flight ends
    as it will, and no retry follows it (see :func:`finish`). Either way a person has decided:
    the reason the engine disabled it for (a 410 Gone) goes.
    """
    webhook.disabled_reason = None
    if enabled and webhook.out_of_order:
        if webhook.next_trigger_at is not None:
            make_due_now(webhook, count_event=False)
        webhook.out_of_order = False
        webhook.trigger_attempts = 0
    elif not enabled:
        webhook.next_trigger_at = None
        webhook.trigger_attempts = 0
        if inspect(webhook).persistent:  # a webhook being made has no trigger to drop
            for name, value in END_OF_TRIGGER.items():  # the pending trigger is dropped; a later one is new
                setattr(webhook, name, value)
    webhook.active = enabled


def due_now(webhook: Webhook) -> bool:
    """Whether the webhook (as last loaded) has a trigger that should be sent now."""
    return webhook.active and webhook.next_trigger_at is not None and webhook.next_trigger_at <= utcnow()
