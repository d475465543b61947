"""The rows of ``event_feeds`` (docs/architecture.md, "Following events"): written with the event,
filled in for the events stored before them by a backfill, removed with the events they name.

An account may see the events it posted (``ix_events_account_created``) and those that matched
one of its webhooks. An event posted with an account's own token matches only that account's
webhooks, so only an event posted with a platform token has rows here: one per other account
whose webhooks it matched, whatever the number of its webhooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from webhookapp.engine import backfills
from webhookapp.infra.extensions import db
from webhookapp.models import Account, EventFeed, Webhook

BACKFILL = "event_feeds"
BATCH_SIZE = backfills.BATCH_SIZE
"""Feed rows deleted per prune transaction."""


def _accounts_of(webhook_ids: Iterable[str]) -> dict[str, str]:
    """The account of each webhook named (deleted webhooks are left out: nobody sees through them)."""
    ids = set(webhook_ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(Webhook.id, Webhook.account_id).where(Webhook.id.in_(ids))).all())


def rows_for(poster: str, event_id: str, created_at: datetime, accounts: Iterable[str]) -> list[dict[str, Any]]:
    """The feed rows of one event: one per account other than the ``poster``."""
    return [
        {"account_id": account_id, "created_at": created_at, "event_id": event_id}
        for account_id in sorted(set(accounts) - {poster})
    ]


def store(poster: str, event_id: str, created_at: datetime, webhook_ids: list[str]) -> None:
    """Add the feed rows of an event being stored (in the caller's transaction): the portable
    twin of the ``feeds`` CTE of the PostgreSQL ingest statements."""
    rows = rows_for(poster, event_id, created_at, _accounts_of(webhook_ids).values())
    if rows:
        db.session.execute(insert(EventFeed), rows)


def backfill(batch_size: int = backfills.BATCH_SIZE, progress: Callable[[str], None] | None = None) -> int:
    """Give the events stored before ``event_feeds`` existed their rows (:func:`.backfills.run`);
    returns the rows added by this run."""

    def rows_of(events: Sequence[Any]) -> list[dict[str, Any]]:
        accounts = _accounts_of(webhook_id for event in events for webhook_id in event.webhook_ids or ())
        return [
            row
            for event in events
            for row in rows_for(
                event.account_id, event.id, event.created_at,
                (accounts[webhook_id] for webhook_id in event.webhook_ids or () if webhook_id in accounts),
            )
        ]  # fmt: skip

    return backfills.run(BACKFILL, backfills.inserting(EventFeed, rows_of), batch_size, progress)


def prune(before: datetime, between_batches: Callable[[], None] = lambda: None) -> int:
    """Remove the feed rows of events stored before ``before`` (those pruning removes), account by
    account through the primary key, at most about :data:`BATCH_SIZE` rows per transaction."""
    removed = 0
    for account_id in db.session.scalars(select(Account.id).order_by(Account.id)).all():
        mine = (EventFeed.account_id == account_id, EventFeed.created_at < before)
        while True:
            last = db.session.scalar(
                select(EventFeed.created_at).where(*mine).order_by(EventFeed.created_at)
                .offset(BATCH_SIZE - 1).limit(1)
            )  # fmt: skip
            upto = (EventFeed.created_at <= last,) if last is not None else ()
            gone = db.session.scalars(
                delete(EventFeed).where(*mine, *upto).returning(EventFeed.event_id)
                .execution_options(synchronize_session=False)
            ).all()  # fmt: skip
            db.session.commit()
            removed += len(gone)
            if last is None:
                break
            between_batches()
    return removed
