"""Which attempt carried which event (docs/architecture.md, "Following events"): the Events tab
shows each event's attempt, an attempt's page the events it carried.

A trigger carries the events stored between the start of the webhook's previous trigger attempt
and its own: the events are a time range of the webhook's matches
(:func:`.event_queries.webhook_events`), the attempts a range of their index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select, tuple_

from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Event, Webhook
from webhookapp.services.event_queries import webhook_events

CARRIED_SHOWN = 20
"""Events listed on an attempt's page; the rest are counted and linked to the Events tab."""


def _trigger_attempts(webhook_id: str) -> ColumnElement[bool]:
    """The webhook's attempts that delivered a trigger: not validations, not redeliveries."""
    return and_(Attempt.webhook_id == webhook_id, Attempt.kind == "trigger", Attempt.redelivery_of.is_(None))


def carriers(webhook: Webhook, events: list[Event]) -> dict[str, Attempt]:
    """The attempt that carried each event: the webhook's first trigger attempt that started at
    or after the event was stored (ties by id). Events not carried yet are left out.

    One statement for the page: each event's attempt is one probe of the attempts' index."""
    if not events:
        return {}
    first = (
        select(Attempt.id)
        .where(_trigger_attempts(webhook.id), Attempt.started_at >= Event.created_at)
        .order_by(Attempt.started_at, Attempt.id)
        .limit(1)
        .correlate(Event)
        .scalar_subquery()
    )
    pairs = db.session.execute(select(Event.id, first).where(Event.id.in_([event.id for event in events]))).all()
    attempt_ids = {attempt_id for _event_id, attempt_id in pairs if attempt_id is not None}
    if not attempt_ids:
        return {}
    attempts = {
        attempt.id: attempt for attempt in db.session.scalars(select(Attempt).where(Attempt.id.in_(attempt_ids)))
    }
    return {event_id: attempts[attempt_id] for event_id, attempt_id in pairs if attempt_id in attempts}


@dataclass
class Carried:
    """The events an attempt carried: the newest few, how many in all, and the Events tab's
    position (``before``) where they start."""

    items: list[Event]
    total: paging.Count
    before: str


def carried_events(webhook: Webhook, attempt: Attempt, shown: int = CARRIED_SHOWN) -> Carried | None:
    """The events ``attempt`` carried: those stored after the previous trigger attempt started
    and no later than this one started. None for an attempt that carries no events (a
    validation call, a redelivery)."""
    if attempt.kind != "trigger" or attempt.redelivery_of is not None:
        return None
    previous = db.session.scalar(
        select(Attempt.started_at)
        .where(
            _trigger_attempts(webhook.id),
            tuple_(Attempt.started_at, Attempt.id) < tuple_(attempt.started_at, attempt.id),
        )
        .order_by(Attempt.started_at.desc(), Attempt.id.desc())
        .limit(1)
    )
    found = webhook_events(webhook)
    query = found.query.where(found.moment <= attempt.started_at)
    if previous is not None:
        query = query.where(found.moment > previous)
    items = list(db.session.scalars(query.order_by(found.moment.desc(), found.key.desc()).limit(shown)))
    total = paging.Count(len(items)) if len(items) < shown else paging.bounded_count(query, found.key)
    # Every event stored up to the attempt's start sorts before this position.
    return Carried(items, total, paging.cursor(attempt.started_at + paging.MICROSECOND, "EV-000-000-000-000"))
