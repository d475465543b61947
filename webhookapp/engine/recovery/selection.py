"""Which attempts a recovery sends again (docs/architecture.md, "Recover"): a trigger's final
attempt when it failed, i.e. the trigger ended without a success.

A webhook's trigger attempts (redeliveries aside) follow one another in ``(started_at, id)``
order, one trigger's numbered 1, 2, 3… So a failed attempt was its trigger's last when the next
one is not its retry (numbered one more): a new trigger starts at 1. The newest attempt of all
was the last unless the webhook retries it now (a retry pending or in flight).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, true, tuple_
from sqlalchemy.orm import aliased

from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


@dataclass(frozen=True)
class Position:
    """A place in a webhook's trigger attempts: the ``(started_at, id)`` of the last one looked at."""

    started_at: datetime
    attempt_id: int


@dataclass(frozen=True)
class Candidate:
    """A failed final attempt to send again: its id, start and number within its trigger."""

    attempt_id: int
    started_at: datetime
    number: int

    @property
    def position(self) -> Position:
        return Position(self.started_at, self.attempt_id)


@dataclass(frozen=True)
class Batch:
    """One read: the candidates found, the last attempt looked at, and whether the range is done."""

    candidates: list[Candidate]
    examined: Position | None
    exhausted: bool


def retrying_number(webhook: Webhook) -> int | None:
    """The number of the webhook's newest failed attempt while its trigger is still being tried
    (that failure is not final); None when no trigger of it is being retried."""
    if webhook.lease_id is not None and webhook.lease_attempt > 1:
        return webhook.lease_attempt - 1
    if webhook.next_trigger_at is not None and webhook.trigger_attempts > 0:
        return webhook.trigger_attempts
    return None


def _trigger_attempts(webhook_id: str, *columns: Any) -> Select[Any]:
    """The webhook's trigger attempts, redeliveries aside, in the order triggers made them."""
    return select(Attempt.id, Attempt.started_at, Attempt.number, Attempt.success, *columns).where(
        Attempt.webhook_id == webhook_id, Attempt.kind == "trigger", Attempt.redelivery_of.is_(None)
    )


def count(webhook: Webhook, since: datetime, until: datetime) -> int:
    """How many triggers of ``[since, until)`` ended failed (:func:`count_query`)."""
    return int(db.session.scalar(count_query(webhook, since, until)) or 0)


def count_query(webhook: Webhook, since: datetime, until: datetime) -> Select[Any]:
    """The count of :func:`count`: the range's failed attempts (from the index of failures,
    however many attempts succeeded), each with one probe for the attempt after it, which says
    whether it was its trigger's last."""
    later = aliased(Attempt)
    following = (
        select(later.number)
        .where(
            later.webhook_id == webhook.id, later.kind == "trigger", later.redelivery_of.is_(None),
            tuple_(later.started_at, later.id) > tuple_(Attempt.started_at, Attempt.id),
        )
        .order_by(later.started_at, later.id)
        .limit(1)
        .correlate(Attempt)
        .scalar_subquery()
    )  # fmt: skip
    failed = (
        _trigger_attempts(webhook.id, following.label("next_number"))
        .where(~Attempt.success, Attempt.started_at >= since, Attempt.started_at < until)
        .subquery()
    )
    retrying = retrying_number(webhook)
    newest_final = failed.c.number != retrying if retrying is not None else true()
    final = or_(failed.c.next_number != failed.c.number + 1, and_(failed.c.next_number.is_(None), newest_final))
    return select(func.count()).select_from(failed).where(final)


def read(webhook_id: str, retrying: int | None, after: Position, until: datetime, limit: int) -> Batch:
    """The next ``limit`` trigger attempts after ``after``, and which of them to send again
    (``retrying``: :func:`retrying_number` of the webhook).

    One more row is read than looked at: the next attempt says whether the last was final. The
    range's end bounds what is sent, not what is read, for the same reason.
    """
    query = (
        _trigger_attempts(webhook_id)
        .where(
            Attempt.started_at >= after.started_at,
            or_(Attempt.started_at > after.started_at, Attempt.id > after.attempt_id),
        )
        .order_by(Attempt.started_at, Attempt.id)
        .limit(limit + 1)
    )
    rows = db.session.execute(query).all()
    candidates: list[Candidate] = []
    examined: Position | None = None
    for index, row in enumerate(rows[:limit]):
        if row.started_at >= until:
            return Batch(candidates, examined, True)
        following = rows[index + 1] if index + 1 < len(rows) else None
        final = following.number != row.number + 1 if following is not None else row.number != retrying
        if not row.success and final:
            candidates.append(Candidate(row.id, row.started_at, row.number))
        examined = Position(row.started_at, row.id)
    return Batch(candidates, examined, len(rows) <= limit)
