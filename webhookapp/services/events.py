"""Event ingest (DESIGN §7): validate, match, count and make triggers pending in one transaction.

Workers are woken only after the commit; if that fails (Redis down, the process dies right
there), the sweeper finds the pending triggers in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..catalog import OBJECT_CLASSES
from ..extensions import db
from ..ids import new_id
from ..models import ApiToken, Event, Product, Webhook, utcnow
from . import dispatch, rules

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


def ingest(token: ApiToken, body: Any, *, wake: bool = True) -> IngestResult:
    """Accept one event for ``token``'s account (every account for a platform token).

    Two statements in one transaction: an UPDATE of the matching webhooks (counts, pending
    triggers) and the event's INSERT. The product is looked up only when nothing matched.
    """
    values = _validate(body)
    account_id = token.account_id
    client_id = values.get("id")
    if client_id is not None and (previous := _previous(account_id, client_id)):
        return previous
    product_id, object_class = values["product_id"], values["object_class"]
    now = utcnow()
    table = Webhook.__table__
    conditions = [
        table.c.product_id == product_id,
        table.c.object_class == object_class,
        table.c.type == "event",
        table.c.active.is_(True),
    ]
    if not token.is_platform:
        conditions.append(table.c.account_id == account_id)
    # Rows are locked in id order, so concurrent events for one product never deadlock.
    locked = (select(table.c.id).where(*conditions).order_by(table.c.id).with_for_update().cte("locked")).prefix_with(
        "MATERIALIZED"
    )
    event_id = new_id("EV", 4)
    try:
        matched = sorted(
            db.session.scalars(
                update(table)
                .where(table.c.id.in_(select(locked.c.id)))
                .values(
                    events_count=table.c.events_count + 1,
                    last_event_at=now,
                    # Doorbell: a pending trigger absorbs the event; otherwise one is due now.
                    next_trigger_at=func.coalesce(table.c.next_trigger_at, now),
                    last_event_api_url=values.get("api_url"),
                )
                .returning(table.c.id)
            ).all()
        )
        if not matched and not _product_visible(token, product_id):
            db.session.rollback()
            raise IngestError(404, "PRD_404", [f"Product {product_id} not found."])
        db.session.execute(
            insert(Event.__table__).values(
                id=event_id,
                account_id=account_id,
                client_event_id=client_id,
                object_class=object_class,
                product_id=product_id,
                object_id=values.get("object_id"),
                api_url=values.get("api_url"),
                webhook_ids=matched,
                created_at=now,
            )
        )
        db.session.commit()
    except IntegrityError:  # the same client id, committed meanwhile by a concurrent request
        db.session.rollback()
        previous = _previous(account_id, client_id) if client_id else None
        if previous is None:
            raise
        return previous
    if wake and matched:
        dispatch.wake(matched)
    return IngestResult(event_id, matched, False)
