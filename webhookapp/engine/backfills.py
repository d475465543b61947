"""Backfills: rows that a migration's new table needs for the events stored before it, written
beside the running service in short transactions, oldest event first, resuming where a stopped
run was (``backfills``: docs/operations.md, "Upgrading").

:mod:`.feeds` (rows of ``event_feeds``) and :mod:`.matches` (the events' match sets) each give
:func:`run` what to do with a batch of events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from webhookapp.infra import paging
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Backfill, Event

BATCH_SIZE = 5_000
"""Events read per backfill transaction."""

Apply = Callable[[Sequence[Any]], int]
"""What a backfill does for a batch of events (``id``, ``account_id``, ``created_at``,
``webhook_ids``, ``match_set_id``), in the batch's transaction; returns the rows it wrote."""


def inserting(table: Any, rows_of: Callable[[Sequence[Any]], list[dict[str, Any]]]) -> Apply:
    """An :data:`Apply` that inserts into ``table`` the rows ``rows_of`` gives for a batch,
    skipping those there already (a backfill run again, or meeting the ingest)."""

    def apply(events: Sequence[Any]) -> int:
        rows = rows_of(events)
        if rows:
            dialect = postgresql if on_postgresql() else sqlite
            db.session.execute(dialect.insert(table).on_conflict_do_nothing(), rows)
        return len(rows)

    return apply


def run(name: str, apply: Apply, batch_size: int = BATCH_SIZE, progress: Callable[[str], None] | None = None) -> int:
    """Call ``apply`` for every stored event, ``batch_size`` events per transaction, oldest
    first, noting in ``backfills`` (row ``name``) after each batch where it is and, at the end,
    that it is done. Returns the rows written by this run.

    Safe beside the service, as long as ``apply`` skips what an event stored meanwhile has."""
    state = db.session.get(Backfill, name) or Backfill(name=name, position=None, done=False)
    db.session.add(state)
    db.session.commit()
    added = 0
    while True:
        after = _position(state.position)
        query = select(Event.id, Event.account_id, Event.created_at, Event.webhook_ids, Event.match_set_id)
        if after is not None:
            query = query.where(Event.created_at >= after[0], tuple_(Event.created_at, Event.id) > after)
        events = db.session.execute(query.order_by(Event.created_at, Event.id).limit(batch_size)).all()
        added += apply(events)
        if events:
            state.position = f"{paging.cursor(events[-1].created_at, 0)[:-2]} {events[-1].id}"
        state.done = len(events) < batch_size
        db.session.commit()
        if progress is not None:
            progress(f"{state.position or 'start'}: {added} rows written")
        if state.done:
            return added


def done(name: str) -> bool:
    """Whether the backfill ``name`` has reached the end (no record: nothing was ever to do)."""
    state = db.session.get(Backfill, name)
    return state is None or state.done


def _position(text: str | None) -> tuple[datetime, str] | None:
    """The last event done, from ``backfills.position`` (its time in µs since the epoch, its id):
    any id, not only the service's own format."""
    if not text:
        return None
    micros, _, event_id = text.partition(" ")
    return paging.EPOCH + int(micros) * paging.MICROSECOND, event_id
