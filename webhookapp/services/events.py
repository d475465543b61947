"""Event ingest (DESIGN §7): validate, match, count and make triggers pending in one transaction.

Workers are woken only after the commit; if that fails (Redis down, the process dies right
there), the sweeper finds the pending triggers in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
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


def ingest(token: ApiToken, body: Any, *, wake: bool = True) -> IngestResult:
    """Accept one event for ``token``'s account (every account for a platform token)."""
    values = _validate(body)
    account = token.account
    client_id = values.get("id")
    if client_id is not None and (previous := _previous(account.id, client_id)):
        return previous
    product = db.session.get(Product, values["product_id"])
    if product is None or (account.is_vendor and not token.is_platform and product.vendor_id != account.id):
        raise IngestError(404, "PRD_404", [f"Product {values['product_id']} not found."])

    now = utcnow()
    event = Event(
        id=new_id("EV", 4),
        account_id=account.id,
        client_event_id=client_id,
        object_class=values["object_class"],
        product_id=product.id,
        object_id=values.get("object_id"),
        api_url=values.get("api_url"),
        webhook_ids=[],
    )
    match = update(Webhook).where(
        Webhook.product_id == product.id,
        Webhook.object_class == event.object_class,
        Webhook.type == "event",
        Webhook.active.is_(True),
    )
    if not token.is_platform:
        match = match.where(Webhook.account_id == account.id)
    try:
        db.session.add(event)
        db.session.flush()  # a repeated client id fails here, before anything is counted
        matched = db.session.scalars(
            match.values(
                events_count=Webhook.events_count + 1,
                last_event_at=now,
                # Doorbell: a pending trigger absorbs the event; otherwise one is due now.
                next_trigger_at=func.coalesce(Webhook.next_trigger_at, now),
                last_event_api_url=event.api_url,
            )
            .returning(Webhook.id)
            .execution_options(synchronize_session=False)
        ).all()
        event.webhook_ids = sorted(matched)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        previous = _previous(account.id, client_id) if client_id else None
        if previous is None:
            raise
        return previous
    if wake and event.webhook_ids:
        dispatch.wake(event.webhook_ids)
    return IngestResult(event.id, event.webhook_ids, False)
