"""Match sets (docs/architecture.md, "Following events"): the set of webhooks an event matched,
noted on the event (``events.match_set_id``), so that a webhook's events are the ranges of
``ix_events_match_set_created`` of the few sets it belongs to, however many webhooks share its
product. A set is made by the first event that matches it and never changes; the events of a
busy product match the same few sets again and again, so an event writes no row of its own.

This module is the portable twin of the ``match_set`` CTEs of the PostgreSQL ingest statements,
the backfill of the events stored before migration 0026, and the purge of a deleted webhook.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from webhookapp.engine import backfills
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Event, MatchSet, MatchSetWebhook

BACKFILL = "event_matches"
DIGEST_SQL = 'md5(json_agg(id ORDER BY id COLLATE "C")::text)'
"""A set's digest in SQL, over a relation of webhook ``id``s (NULL for none): :func:`digest`."""


def digest(webhook_ids: Iterable[str]) -> str:
    """The name of a set of webhooks: the MD5 of the event's list of them as PostgreSQL writes it
    (``json_agg`` of the ids sorted by code point: ``["WH-1", "WH-2"]``), so that the ingest
    statement looks the set up from the list it stores. Not a secret: a short key for a set of
    any size."""
    listed = json.dumps(sorted(set(webhook_ids)))
    return hashlib.md5(listed.encode(), usedforsecurity=False).hexdigest()


def set_for(webhook_ids: Iterable[str]) -> int | None:
    """The id of the set of ``webhook_ids`` (in the caller's transaction), made with its members
    if new (:func:`sets_for`: one made meanwhile by a concurrent event is taken); None for no
    webhook."""
    ids = sorted(set(webhook_ids))
    return sets_for([ids])[digest(ids)] if ids else None


def complete() -> bool:
    """Whether every stored event notes its set (the backfill is done): until then a webhook's
    events are found by testing the events' lists (:mod:`webhookapp.services.event_queries`)."""
    return backfills.done(BACKFILL)


def sets_for(lists: Iterable[Iterable[str]]) -> dict[str, int]:
    """The ids of the sets of many lists of webhooks, by :func:`digest` (in the caller's
    transaction), those not made yet made with their members: a few statements for any number."""
    wanted = {digest(ids): sorted(set(ids)) for ids in lists if ids}
    if not wanted:
        return {}
    found = dict(db.session.execute(select(MatchSet.digest, MatchSet.id).where(MatchSet.digest.in_(wanted))).all())
    missing = [name for name in wanted if name not in found]
    if missing:
        # Skipping those an event made meanwhile (its statement makes them the same way).
        dialect = postgresql if on_postgresql() else sqlite
        db.session.execute(dialect.insert(MatchSet).on_conflict_do_nothing(), [{"digest": name} for name in missing])
        made = select(MatchSet.digest, MatchSet.id).where(MatchSet.digest.in_(missing))
        found.update(db.session.execute(made).all())
        members = [{"webhook_id": member, "set_id": found[name]} for name in missing for member in wanted[name]]
        db.session.execute(dialect.insert(MatchSetWebhook).on_conflict_do_nothing(), members)
    return found


def backfill(batch_size: int = backfills.BATCH_SIZE, progress: Callable[[str], None] | None = None) -> int:
    """Note on the events stored before migration 0026 their set (:func:`.backfills.run`);
    returns the events updated by this run. An event that has one already is left alone."""

    def apply(events: Sequence[Any]) -> int:
        lacking = [event for event in events if event.match_set_id is None and event.webhook_ids]
        sets = sets_for(event.webhook_ids for event in lacking)
        changes = [{"event": event.id, "set": sets[digest(event.webhook_ids)]} for event in lacking]
        if changes:
            statement = update(Event).where(Event.id == bindparam("event")).values(match_set_id=bindparam("set"))
            db.session.connection().execute(statement, changes)
        return len(changes)

    return backfills.run(BACKFILL, apply, batch_size, progress)


def purge(webhook_id: str) -> None:
    """Remove a deleted webhook from its sets (in the caller's transaction): the sets stay, as
    the events that name them do."""
    db.session.execute(delete(MatchSetWebhook).where(MatchSetWebhook.webhook_id == webhook_id))
