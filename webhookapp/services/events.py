"""Event ingest (DESIGN §7): validate, match, count and make triggers pending in one transaction.

Workers are woken only after the commit; if that fails (Redis down, the process dies right
there), the sweeper finds the pending triggers in the database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..catalog import OBJECT_CLASSES
from ..extensions import db, on_postgresql
from ..ids import new_id
from ..models import ApiToken, Event, Product, UTCDateTime, Webhook, utcnow
from . import dispatch, ingest_postgresql, rules, tokens

FIELDS = {"object_class", "product_id", "id", "object_id", "api_url"}
ID_MAX = 100


@dataclass
class IngestError(Exception):
    """Input the endpoint refuses: ``status``, ``error_code`` and messages for the JSON body."""

    status: int
    error_code: str
    errors: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    event_id: str
    webhook_ids: list[str]
    duplicate: bool

    def as_json(self) -> dict[str, Any]:
        return {"id": self.event_id, "webhooks": self.webhook_ids, "duplicate": self.duplicate}


def _validate(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise IngestError(400, "VAL_001", ["The body must be a JSON object."])
    errors = [f"Unknown field '{name}'." for name in sorted(set(body) - FIELDS)]
    object_class = body.get("object_class")
    if object_class is None:
        errors.append("'object_class' is required.")
    elif object_class not in OBJECT_CLASSES:
        errors.append(f"'object_class' must be one of: {', '.join(OBJECT_CLASSES)}.")
    product_id = body.get("product_id")
    if product_id is None:
        errors.append("'product_id' is required.")
    elif not isinstance(product_id, str) or not 0 < len(product_id) <= 20:
        errors.append("'product_id' must be a product id such as PRD-123-456-789.")
    for name in ("id", "object_id"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= ID_MAX):
            errors.append(f"'{name}' must be a string of 1 to {ID_MAX} characters.")
    api_url = body.get("api_url")
    if api_url is not None:
        try:
            if not isinstance(api_url, str):
                raise rules.RuleError("must be a string")
            rules.external_url(api_url)
        except rules.RuleError:
            errors.append("'api_url' must be an http:// or https:// URL of at most 4096 characters.")
    if errors:
        raise IngestError(400, "VAL_001", errors)
    return body


def _previous(account_id: str, client_event_id: str) -> IngestResult | None:
    event = db.session.scalar(
        select(Event).where(Event.account_id == account_id, Event.client_event_id == client_event_id)
    )
    return IngestResult(event.id, list(event.webhook_ids), True) if event else None


def _product_visible(token: ApiToken, product_id: str) -> bool:
    product = db.session.get(Product, product_id)
    account = token.account
    return product is not None and (token.is_platform or not account.is_vendor or product.vendor_id == account.id)


class Unauthenticated(Exception):
    """No valid API token was presented."""


def ingest_as(authorization: str | None, body: Any, *, wake: bool = True) -> IngestResult:
    """Accept one event for the token that ``authorization`` (``ApiKey|Bearer <token>``) presents.

    Raises :class:`Unauthenticated` without a valid token and :class:`IngestError` for refused
    input. On PostgreSQL the token is checked by the same statement that stores the event.
    """
    digest = tokens.presented_digest(authorization)
    if digest is None:
        raise Unauthenticated
    values = _validate(body)
    if on_postgresql():
        return _ingest_postgresql(digest, values, wake)
    token = tokens.authenticate_header(authorization)
    if token is None:
        raise Unauthenticated
    return _ingest(token, values, wake)


def ingest(token: ApiToken, body: Any, *, wake: bool = True) -> IngestResult:
    """Accept one event for ``token``'s account (every account for a platform token).

    The event row, the webhooks' counts and their pending triggers are committed together, then
    the workers are woken: on PostgreSQL by :mod:`.ingest_postgresql`, elsewhere by two
    statements in one transaction.
    """
    values = _validate(body)
    if on_postgresql():
        return _ingest_postgresql(token.token_hash, values, wake)
    return _ingest(token, values, wake)


def _ingest_postgresql(digest: str, values: dict[str, Any], wake: bool) -> IngestResult:
    event_id = new_id("EV", 4)
    outcome = ingest_postgresql.store(
        digest, values, event_id=event_id, now=utcnow(), last_used_precision=tokens.LAST_USED_PRECISION, wake=wake
    )
    if outcome.account_id is None:
        raise Unauthenticated
    if not outcome.found:
        raise IngestError(404, "PRD_404", [f"Product {values['product_id']} not found."])
    if outcome.webhook_ids is None:  # a known client id
        previous = _previous(outcome.account_id, values["id"])
        if previous is None:
            raise RuntimeError(f"Event {values['id']!r} was refused as a duplicate but cannot be found")
        return previous
    return IngestResult(event_id, outcome.webhook_ids, False)  # the workers are woken by the store


def _ingest(token: ApiToken, values: dict[str, Any], wake: bool) -> IngestResult:
    client_id = values.get("id")
    if client_id is not None and (previous := _previous(token.account_id, client_id)):
        return previous
    event_id = new_id("EV", 4)
    try:
        matched, fresh = _store(token, values, event_id, utcnow())
    except IntegrityError:  # the same client id, committed meanwhile by a concurrent request
        db.session.rollback()
        previous = _previous(token.account_id, client_id) if client_id else None
        if previous is None:
            raise
        return previous
    if wake and fresh:
        dispatch.wake(fresh)
    return IngestResult(event_id, matched, False)


@functools.cache
def _count_statement(platform: bool) -> Update:
    """Count an event on the webhooks it matches, with their pending trigger; built once per kind
    of token, since building a statement this size costs more than running it."""
    table = Webhook.__table__
    now = bindparam("b_now", type_=UTCDateTime())
    conditions = [
        table.c.product_id == bindparam("b_product_id"),
        table.c.object_class == bindparam("b_object_class"),
        table.c.type == "event",
        table.c.active.is_(True),
    ]
    if not platform:
        conditions.append(table.c.account_id == bindparam("b_account_id"))
    # Rows are locked in id order, so concurrent events for one product never deadlock.
    locked = (select(table.c.id).where(*conditions).order_by(table.c.id).with_for_update().cte("locked")).prefix_with(
        "MATERIALIZED"
    )
    return (
        update(table)
        .where(table.c.id.in_(select(locked.c.id)))
        .values(
            events_count=table.c.events_count + 1,
            last_event_at=now,
            # Doorbell: a pending trigger absorbs the event; otherwise one is due now.
            next_trigger_at=func.coalesce(table.c.next_trigger_at, now),
            last_event_api_url=bindparam("b_api_url"),
        )
        # RETURNING sees the new row: a trigger due at this very moment is the event's own.
        .returning(table.c.id, table.c.next_trigger_at, table.c.out_of_order)
    )


def _store(token: ApiToken, values: dict[str, Any], event_id: str, now: datetime) -> tuple[list[str], list[str]]:
    """Store and count the event with two statements in one transaction.

    Returns the matched webhook ids, and those whose trigger the event made due: the others had
    one pending already, and whoever made it pending has woken the workers (or the sweeper will).
    """
    counted = db.session.execute(
        _count_statement(token.is_platform),
        {
            "b_product_id": values["product_id"],
            "b_object_class": values["object_class"],
            "b_account_id": token.account_id,
            "b_now": now,
            "b_api_url": values.get("api_url"),
        },
    ).all()
    matched = sorted(row.id for row in counted)
    fresh = sorted(row.id for row in counted if row.next_trigger_at == now and not row.out_of_order)
    if not matched and not _product_visible(token, values["product_id"]):
        db.session.rollback()
        raise IngestError(404, "PRD_404", [f"Product {values['product_id']} not found."])
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
            "created_at": now,
        },
    )
    db.session.commit()
    return matched, fresh
