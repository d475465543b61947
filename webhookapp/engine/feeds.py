"""The rows of ``event_feeds`` (docs/architecture.md, "Following events"): written with the event,
filled in for the events stored before them by a backfill, removed with the events they name.

An account may see the events it posted (``ix_events_account_created``) and those that matched
one of its webhooks. An event posted with an account's own token matches only that account's
webhooks, so only an event posted with a platform token has rows here: one per other account
whose webhooks it matched, whatever the number of its webhooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from webhookapp.infra import paging
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Account, Backfill, Event, EventFeed, Webhook

BACKFILL = "event_feeds"
BATCH_SIZE = 5_000
"""Events read per backfill transaction, feed rows deleted per prune transaction."""


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


def _insert_ignoring_known(rows: list[dict[str, Any]]) -> None:
    """Insert feed rows, skipping those there already (a backfill run again, or meeting the ingest)."""
    dialect = postgresql if on_postgresql() else sqlite
    db.session.execute(dialect.insert(EventFeed).on_conflict_do_nothing(), rows)


def backfill(batch_size: int = BATCH_SIZE, progress: Callable[[str], None] | None = None) -> int:
    """Give the events stored before ``event_feeds`` existed their rows: oldest first,
    ``batch_size`` events per short transaction, noting after each where it is (``backfills``)
    so that a run stopped anywhere resumes there. Returns the rows added by this run.

    Safe beside the service: an event stored meanwhile already has its rows, and a row there
    already is skipped."""
    state = db.session.get(Backfill, BACKFILL) or Backfill(name=BACKFILL, position=None, done=False)
    db.session.add(state)
    db.session.commit()
    added = 0
    while True:
        after = _position(state.position)
        query = select(Event.id, Event.account_id, Event.created_at, Event.webhook_ids)
        if after is not None:
            query = query.where(Event.created_at >= after[0], tuple_(Event.created_at, Event.id) > after)
        events = db.session.execute(query.order_by(Event.created_at, Event.id).limit(batch_size)).all()
        accounts = _accounts_of(webhook_id for event in events for webhook_id in event.webhook_ids or ())
        rows = [
            row
            for event in events
            for row in rows_for(
                event.account_id, event.id, event.created_at,
                (accounts[webhook_id] for webhook_id in event.webhook_ids or () if webhook_id in accounts),
            )
        ]  # fmt: skip
        if rows:
            _insert_ignoring_known(rows)
        added += len(rows)
        if events:
            state.position = f"{paging.cursor(events[-1].created_at, 0)[:-2]} {events[-1].id}"
        state.done = len(events) < batch_size
        db.session.commit()
        if progress is not None:
            progress(f"{state.position or 'start'}: {added} rows added")
        if state.done:
            return added


def _position(text: str | None) -> tuple[datetime, str] | None:
    """The last event done, from ``backfills.position`` (its time in µs since the epoch, its id):
    any id, not only the service's own format."""
    if not text:
        return None
    micros, _, event_id = text.partition(" ")
    return paging.EPOCH + int(micros) * paging.MICROSECOND, event_id


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
