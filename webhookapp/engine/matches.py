"""The rows of ``event_matches`` (docs/architecture.md, "Following events"): an event and each
webhook it matched, so that a webhook's events are a range of one index however many webhooks
share its product. Written with the event, filled in for the events stored before them by a
backfill, removed with the events they name and with a deleted webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, tuple_

from webhookapp.engine import backfills
from webhookapp.infra.extensions import db
from webhookapp.models import EventMatch, Webhook

BACKFILL = "event_matches"
BATCH_SIZE = backfills.BATCH_SIZE
"""Rows deleted per transaction when a webhook's rows go."""
WEBHOOKS_PER_PRUNE = 200
"""Webhooks whose old rows one prune transaction removes (each a range of the primary key)."""


def rows_for(event_id: str, created_at: datetime, webhook_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The rows of one event: one per webhook it matched."""
    return [
        {"webhook_id": webhook_id, "created_at": created_at, "event_id": event_id}
        for webhook_id in sorted(set(webhook_ids))
    ]


def store(event_id: str, created_at: datetime, webhook_ids: list[str]) -> None:
    """Add the rows of an event being stored (in the caller's transaction): the portable twin of
    the ``matches`` CTE of the PostgreSQL ingest statements."""
    rows = rows_for(event_id, created_at, webhook_ids)
    if rows:
        db.session.execute(insert(EventMatch), rows)


def complete() -> bool:
    """Whether every stored event has its rows (the backfill is done): until then a webhook's
    events are found by testing the events' lists (:mod:`webhookapp.services.event_queries`)."""
    return backfills.done(BACKFILL)


def backfill(batch_size: int = backfills.BATCH_SIZE, progress: Callable[[str], None] | None = None) -> int:
    """Give the events stored before ``event_matches`` existed their rows (:func:`.backfills.run`),
    for the webhooks that still exist; returns the rows added by this run."""

    def rows_of(events: Sequence[Any]) -> list[dict[str, Any]]:
        named = {webhook_id for event in events for webhook_id in event.webhook_ids or ()}
        existing = set(db.session.scalars(select(Webhook.id).where(Webhook.id.in_(named)))) if named else set()
        return [
            row
            for event in events
            for row in rows_for(event.id, event.created_at, (w for w in event.webhook_ids or () if w in existing))
        ]

    return backfills.run(BACKFILL, EventMatch, rows_of, batch_size, progress)


def prune(before: datetime, between_batches: Callable[[], None] = lambda: None) -> int:
    """Remove the rows of events stored before ``before`` (those pruning removes):
    :data:`WEBHOOKS_PER_PRUNE` webhooks per transaction, each a range of the primary key. The
    rows of deleted webhooks go with them (:func:`purge`)."""
    removed, after = 0, ""
    while True:
        chunk = list(
            db.session.scalars(
                select(Webhook.id).where(Webhook.id > after).order_by(Webhook.id).limit(WEBHOOKS_PER_PRUNE)
            )
        )
        if not chunk:
            return removed
        gone = db.session.scalars(
            delete(EventMatch)
            .where(EventMatch.webhook_id.in_(chunk), EventMatch.created_at < before)
            .returning(EventMatch.event_id)
            .execution_options(synchronize_session=False)
        ).all()
        db.session.commit()
        removed += len(gone)
        after = chunk[-1]
        between_batches()


def purge(webhook_id: str, between_batches: Callable[[], None] = lambda: None) -> int:
    """Remove the rows of a deleted webhook, :data:`BATCH_SIZE` per transaction."""
    removed = 0
    mine = EventMatch.webhook_id == webhook_id
    while True:
        batch = select(EventMatch.created_at, EventMatch.event_id).where(mine).limit(BATCH_SIZE)
        gone = db.session.scalars(
            delete(EventMatch)
            .where(mine, tuple_(EventMatch.created_at, EventMatch.event_id).in_(batch))
            .returning(EventMatch.event_id)
            .execution_options(synchronize_session=False)
        ).all()
        db.session.commit()
        removed += len(gone)
        if len(gone) < BATCH_SIZE:
            return removed
        between_batches()
