"""Event ingest (docs/architecture.md, "Data flow"): validate, match, count and make triggers
pending in one transaction.

On PostgreSQL one statement does it all (:mod:`webhookapp.engine.ingest.postgresql`); elsewhere two statements in
one transaction (:func:`ingest_portable`). Workers are woken only after the commit; if that
fails (Redis down, the process dies right there), the sweeper finds the pending triggers in the
database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from webhookapp.core import rules, scopes
from webhookapp.core.catalog import OBJECT_CLASSES
from webhookapp.core.errors import ServiceError, Unauthenticated
from webhookapp.core.ids import new_id
from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, feeds, matches, triggers
from webhookapp.engine.ingest import postgresql as ingest_postgresql
from webhookapp.engine.types import CountedEvent
from webhookapp.infra import logs
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import ApiToken, Event, tenancy

FIELDS = {"object_class", "product_id", "id", "object_id", "api_url"}
ID_MAX = 100


@dataclass
class IngestResult:
    event_id: str
    webhook_ids: list[str]
    duplicate: bool

    def as_json(self) -> dict[str, Any]:
        return {"id": self.event_id, "webhooks": self.webhook_ids, "duplicate": self.duplicate}


def validate(body: Any) -> dict[str, Any]:
    """The event's fields, or a :class:`ServiceError` (400) listing every problem."""
    if not isinstance(body, dict):
        raise ServiceError(400, "VAL_001", "The body must be a JSON object.")
    errors = [f"Unknown field '{name}'." for name in sorted(set(body) - FIELDS)]
    problems = (
        _object_class_problem(body.get("object_class")),
        _product_id_problem(body.get("product_id")),
        *(_client_id_problem(name, body.get(name)) for name in ("id", "object_id")),
        _api_url_problem(body.get("api_url")),
    )
    errors.extend(problem for problem in problems if problem is not None)
    if errors:
        raise ServiceError(400, "VAL_001", *errors)
    return body


def _object_class_problem(value: Any) -> str | None:
    if value is None:
        return "'object_class' is required."
    if value not in OBJECT_CLASSES:
        return f"'object_class' must be one of: {', '.join(OBJECT_CLASSES)}."
    return None


def _product_id_problem(value: Any) -> str | None:
    if value is None:
        return "'product_id' is required."
    if not isinstance(value, str) or not 0 < len(value) <= 20:
        return "'product_id' must be a product id such as PRD-123-456-789."
    if not rules.is_plain(value):
        return "'product_id' may not contain control characters or lone surrogates."
    return None


def _client_id_problem(name: str, value: Any) -> str | None:
    """``id`` and ``object_id`` are optional, and plain text when given."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= ID_MAX:
        return f"'{name}' must be a string of 1 to {ID_MAX} characters."
    if not rules.is_plain(value):
        return f"'{name}' may not contain control characters or lone surrogates."
    return None


def _api_url_problem(value: Any) -> str | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise rules.RuleError("must be a string")
        rules.external_url(value)
    except rules.RuleError:
        return "'api_url' must be an http:// or https:// URL of at most 4096 characters."
    return None


def _unknown_product(values: dict[str, Any]) -> ServiceError:
    return ServiceError(404, "PRD_404", f"Product {values['product_id']} not found.")


def _previous(account_id: str, client_event_id: str) -> IngestResult | None:
    event = db.session.scalar(
        select(Event).where(Event.account_id == account_id, Event.client_event_id == client_event_id)
    )
    return IngestResult(event.id, list(event.webhook_ids), True) if event else None


def ingest_as(
    authorization: str | None,
    body: Any,
    groups: ingest_postgresql.GroupCommit,
    *,
    address: str | None = None,
    wake: bool = True,
    traceparent: str | None = None,
) -> IngestResult:
    """Accept one event for the token that ``authorization`` (``ApiKey|Bearer <token>``) presents,
    sent from the client ``address``: the event row, the webhooks' counts and their pending
    triggers are committed together; then, if ``wake``, the workers are woken for the triggers
    the event made due.

    Raises :class:`Unauthenticated` without a valid token (or an expired one),
    :class:`.scopes.InsufficientScope` for a token without ``events:write`` and
    :class:`ServiceError` for refused input. On PostgreSQL the token is checked by the same
    statement that stores the event, in a group of ``groups`` (the process's:
    :attr:`.Runtime.group_commit`). ``traceparent`` is the API call's trace context, stored with
    the event and with the triggers it makes due (docs/operations.md, "Tracing").
    """
    digest = tenancy.presented_digest(authorization)
    if digest is None:
        raise Unauthenticated
    values = validate(body)
    if on_postgresql():
        return _ingest_postgresql(groups, authorization, digest, values, address, wake, traceparent)
    token = tenancy.authorize(authorization, scopes.EVENTS_WRITE, address)
    return ingest_portable(token, values, wake=wake, traceparent=traceparent)


def _ingest_postgresql(
    groups: ingest_postgresql.GroupCommit,
    authorization: str | None,
    digest: str,
    values: dict[str, Any],
    address: str | None,
    wake: bool,
    traceparent: str | None,
) -> IngestResult:
    event_id = new_id("EV", 4)
    with logs.context(event_id=event_id):  # a failed wake-up says which event it was for
        outcome = ingest_postgresql.store(
            groups, digest, values, event_id=event_id, now=utcnow(), address=address, wake=wake,
            traceparent=traceparent,
        )  # fmt: skip
    if outcome.account_id is None:
        # Refused: ask again in Python for the reason (none, expired, lacking the scope); nothing was stored.
        tenancy.authorize(authorization, scopes.EVENTS_WRITE, address)
        raise Unauthenticated  # accepted meanwhile (a clock tick): refuse this one all the same
    if not outcome.found:
        raise _unknown_product(values)
    if outcome.webhook_ids is None:  # a known client id
        previous = _previous(outcome.account_id, values["id"])
        if previous is None:
            raise RuntimeError(f"Event {values['id']!r} was refused as a duplicate but cannot be found")
        return previous
    return IngestResult(event_id, outcome.webhook_ids, False)  # the workers are woken by the store


def ingest_portable(
    token: ApiToken, values: dict[str, Any], *, wake: bool = True, traceparent: str | None = None
) -> IngestResult:
    """Store and count validated ``values`` with two statements in one transaction, on any database."""
    client_id = values.get("id")
    if client_id is not None and (previous := _previous(token.account_id, client_id)):
        return previous
    event_id = new_id("EV", 4)
    with logs.context(event_id=event_id):
        try:
            matched, fresh = _store(token, values, event_id, utcnow(), traceparent)
        except IntegrityError:  # the same client id, committed meanwhile by a concurrent request
            db.session.rollback()
            previous = _previous(token.account_id, client_id) if client_id else None
            if previous is None:
                raise
            return previous
        if wake and fresh:
            dispatch.wake(fresh)
    return IngestResult(event_id, matched, False)


def _store(
    token: ApiToken, values: dict[str, Any], event_id: str, now: datetime, traceparent: str | None
) -> CountedEvent:
    """Count the event (:func:`.triggers.count_event`), then store it."""
    matched, fresh = triggers.count_event(
        product_id=values["product_id"],
        object_class=values["object_class"],
        account_id=None if token.is_platform else token.account_id,
        now=now,
        api_url=values.get("api_url"),
        traceparent=traceparent,
    )
    if not matched and not tenancy.usable_product(token.account, values["product_id"], platform=token.is_platform):
        db.session.rollback()
        raise _unknown_product(values)
    db.session.execute(
        insert(Event.__table__),
        {
            "id": event_id,
            "account_id": token.account_id,
            "client_event_id": values.get("id"),
            "object_class": values["object_class"],
            "product_id": values["product_id"],
            "object_id": values.get("object_id"),
            "api_url": values.get("api_url"),
            "webhook_ids": matched,
            "match_set_id": matches.set_for(matched),
            "created_at": now,
            "traceparent": traceparent,
        },
    )
    if token.is_platform and matched:  # the other accounts whose webhooks it matched see it too
        feeds.store(token.account_id, event_id, now, matched)
    db.session.commit()
    return CountedEvent(matched, fresh)
