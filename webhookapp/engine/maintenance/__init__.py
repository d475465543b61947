"""Pruning and purging (docs/architecture.md, "Scale"): what keeps the attempt and event tables
the size their retention settings say.

* :func:`prune` removes attempts older than ``WEBHOOK_ATTEMPT_RETENTION_DAYS`` (and takes them off
  their webhooks' counts, :func:`.attempt_counts.subtract`), events older
  than ``WEBHOOK_EVENT_RETENTION_DAYS`` (and their rows of ``event_feeds``,
  :func:`.feeds.prune`) and audit entries older than
  ``WEBHOOK_AUDIT_RETENTION_DAYS``, then the attempts of deleted webhooks.
* :func:`purge_deleted` removes a deleted webhook's attempts (and its hourly sums); the web
  request that deleted the webhook queued it, and :func:`prune` finishes whatever a lost job left.
* Hourly sums (``attempt_hours``, :mod:`.hourly`) go with the attempts' retention, or once the
  chart's longest window (and a day) has passed them if that comes first: nothing reads them
  then. An hourly prune removes an hour of them, a row per webhook with attempts in that hour.

Rows go in batches of :data:`BATCH`, each its own short transaction, so no transaction holds
back vacuum, writes gigabytes of WAL at once or keeps the workers waiting; the dead rows a batch
leaves are vacuumable at once. One worker prunes at a time: :func:`prune` holds a lease
(:class:`~webhookapp.models.MaintenanceLease`), renewed every batch, that a dead worker's
successor takes over once it expires.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from webhookapp.core.times import utcnow
from webhookapp.engine import attempt_counts, feeds, matches
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, AttemptHour, AuditEntry, DeletedWebhook, Event, MaintenanceLease

log = logging.getLogger(__name__)

BATCH = 5_000
"""Rows deleted per transaction: tens of milliseconds of work, a few MB of WAL."""
LEASE_SECONDS = 300.0
"""How long the prune lease lasts without renewal: far longer than a batch takes."""
PRUNE_LEASE = "prune"
HOURLY_SUMS_KEPT = timedelta(days=8)
"""How long hourly sums are kept at most: the chart's longest window (7 days) and a day."""


class LeaseLost(Exception):
    """Our prune lease expired and another worker took it over: stop, it carries on."""


def _delete_in_batches(
    table: Any,
    key: Any,
    moment: Any,
    condition: ColumnElement[bool],
    between_batches: Callable[[], None],
    on_deleted: Callable[[Sequence[Any]], None] | None = None,
) -> int:
    """Delete the rows of ``table`` that meet ``condition``, oldest ``moment`` first, :data:`BATCH`
    per transaction, calling ``between_batches`` (which may raise to stop) after each full one.
    Each batch starts where the last ended, so it does not walk again over the index entries of
    rows already deleted (they stay until vacuum). ``on_deleted`` sees each batch's deleted rows
    (their ``moment`` and ``webhook_id``) in the batch's transaction."""
    removed, floor = 0, None
    returned = (moment,) if on_deleted is None else (moment, table.webhook_id)
    while True:
        batch = select(key).where(condition).order_by(moment).limit(BATCH)
        if floor is not None:
            batch = batch.where(moment >= floor)
        rows = db.session.execute(
            delete(table)
            .where(key.in_(batch.scalar_subquery()))
            .returning(*returned)
            .execution_options(synchronize_session=False)
        ).all()
        if on_deleted is not None:
            on_deleted(rows)
        db.session.commit()
        moments = [row[0] for row in rows]
        removed += len(moments)
        if len(moments) < BATCH:
            return removed
        between_batches()
        floor = max(moments)


def purge_deleted(webhook_id: str | None = None, between_batches: Callable[[], None] = lambda: None) -> int:
    """Remove the attempts of a deleted webhook (of every deleted webhook when None), then its
    place in the match sets, its hourly sums and its record in ``deleted_webhooks``; returns the attempts removed."""
    query = select(DeletedWebhook.webhook_id).order_by(DeletedWebhook.deleted_at)
    if webhook_id is not None:
        query = query.where(DeletedWebhook.webhook_id == webhook_id)
    removed = 0
    for deleted in db.session.scalars(query).all():
        removed += _delete_in_batches(
            Attempt, Attempt.id, Attempt.started_at, Attempt.webhook_id == deleted, between_batches
        )
        matches.purge(deleted)
        db.session.execute(delete(AttemptHour).where(AttemptHour.webhook_id == deleted))
        db.session.execute(delete(DeletedWebhook).where(DeletedWebhook.webhook_id == deleted))
        db.session.commit()
    return removed


def _cutoff(setting: str) -> datetime:
    return utcnow() - timedelta(days=float(current_app.config[setting]))


def _delete_hours(before: datetime) -> int:
    """Remove the hourly sums of hours that began before ``before``, a day of hours per
    transaction (an hourly prune finds one hour to remove; a prune that did not run for long,
    more)."""
    removed = 0
    while (oldest := db.session.scalar(select(func.min(AttemptHour.hour)))) is not None and oldest < before:
        a_day = (
            delete(AttemptHour)
            .where(AttemptHour.hour < min(before, oldest + timedelta(days=1)))
            .execution_options(synchronize_session=False)
        )
        removed += rowcount(db.session.execute(a_day))
        db.session.commit()
    return removed


def prune() -> dict[str, int] | None:
    """Prune attempts, events and audit entries past their retention and purge deleted webhooks' attempts;
    returns what was removed, or None when another worker holds the lease."""
    holder = take_lease(PRUNE_LEASE)
    if holder is None:
        return None
    began = time.monotonic()

    def renew() -> None:
        if not renew_lease(PRUNE_LEASE, holder):
            raise LeaseLost

    try:
        attempts_before = _cutoff("WEBHOOK_ATTEMPT_RETENTION_DAYS")
        events_before = _cutoff("WEBHOOK_EVENT_RETENTION_DAYS")
        audit_before = _cutoff("WEBHOOK_AUDIT_RETENTION_DAYS")
        removed = {
            "attempts": _delete_in_batches(
                Attempt,
                Attempt.id,
                Attempt.started_at,
                Attempt.started_at < attempts_before,
                renew,
                on_deleted=lambda rows: attempt_counts.subtract(row.webhook_id for row in rows),
            ),
            "events": _delete_in_batches(Event, Event.id, Event.created_at, Event.created_at < events_before, renew),
            "event_feeds": feeds.prune(events_before, renew),
            "audit_entries": _delete_in_batches(
                AuditEntry, AuditEntry.id, AuditEntry.at, AuditEntry.at < audit_before, renew
            ),
            "attempt_hours": _delete_hours(max(attempts_before, utcnow() - HOURLY_SUMS_KEPT)),
            "deleted_webhook_attempts": purge_deleted(between_batches=renew),
        }
    except LeaseLost:
        log.warning("The prune lease expired mid-way; another worker carries on.")
        return None
    finally:
        db.session.rollback()  # a connection that died mid-way leaves its transaction to end first
        release_lease(PRUNE_LEASE, holder)
    log.info("Pruned %s in %.1f s.", removed, time.monotonic() - began)
    return removed


# -- the lease -------------------------------------------------------------------------------


def take_lease(name: str, seconds: float = LEASE_SECONDS) -> str | None:
    """Hold the lease ``name`` for ``seconds`` if nobody else holds it; returns the holder id."""
    holder, now = secrets.token_hex(8), utcnow()
    take = (
        update(MaintenanceLease)
        .where(MaintenanceLease.name == name)
        .where((MaintenanceLease.expires_at.is_(None)) | (MaintenanceLease.expires_at < now))
        .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    taken = rowcount(db.session.execute(take))
    if not taken:
        exists = db.session.scalar(select(MaintenanceLease.name).where(MaintenanceLease.name == name))
        if exists:
            db.session.rollback()
            return None
        db.session.add(MaintenanceLease(name=name, holder=holder, expires_at=now + timedelta(seconds=seconds)))
    try:
        db.session.commit()
    except IntegrityError:  # another worker created the lease row first: it is theirs
        db.session.rollback()
        return None
    return holder


def renew_lease(name: str, holder: str, seconds: float = LEASE_SECONDS) -> bool:
    """Extend a lease we hold; False if it expired and another worker took it (stop then)."""
    renew = (
        update(MaintenanceLease)
        .where(MaintenanceLease.name == name, MaintenanceLease.holder == holder)
        .values(expires_at=utcnow() + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    renewed = rowcount(db.session.execute(renew))
    db.session.commit()
    return bool(renewed)


def release_lease(name: str, holder: str) -> None:
    db.session.execute(
        update(MaintenanceLease)
        .where(MaintenanceLease.name == name, MaintenanceLease.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
