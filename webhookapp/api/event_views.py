"""``GET /public/v1/events`` and ``/events/{id}``: the events that rang the doorbells
(docs/architecture.md, "Following events").

Two kinds of caller read them:

* an account's API token sees the events the account posted and those that matched one of its
  webhooks (an event posted with a platform token is stored under the platform's account and
  may match every account's webhooks); another event's id is a 404;
* a handler calling back with the delivery JWT it was just sent (``Authorization: Bearer
  <JWT>``, until the JWT's ``exp``) sees its own webhook's events alone
  (:mod:`webhookapp.api.callbacks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import g, jsonify, request
from sqlalchemy import ColumnElement, false
from werkzeug import Response

from webhookapp.api import callbacks, rql
from webhookapp.api.routes import blueprint
from webhookapp.api.serializers import event_json
from webhookapp.api.webhook_views import datetime_value, paginated
from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError
from webhookapp.engine import runtime, tracing
from webhookapp.models import Event, tenancy
from webhookapp.services import event_queries


def event_fields(webhook_match: Callable[[str], ColumnElement[bool]]) -> dict[str, rql.Field]:
    """The fields an events list filters on; ``webhook_match`` is the caller's ``webhook.id`` test."""
    return {
        "id": rql.Field(Event.id),
        "external_id": rql.Field(Event.client_event_id),
        "object_id": rql.Field(Event.object_id),
        "object_class": rql.Field(Event.object_class),
        "product.id": rql.Field(Event.product_id),
        "webhook.id": rql.Field(None, match=webhook_match),
        "created_at": rql.Field(Event.created_at, datetime_value, text=False, comparable=True),
    }


EVENT_FIELDS = event_fields(lambda _webhook_id: false())  # the names, for the OpenAPI document


@dataclass(frozen=True)
class Reader:
    """Who reads events: which they may see, which webhooks of theirs they may name."""

    account_id: str
    visible: ColumnElement[bool]  # for one event
    listed: event_queries.Listed  # for a list: the same events, as the query that reads them cheapest
    webhook_match: Callable[[str], ColumnElement[bool]]
    fixed_webhooks: frozenset[str] | None = None  # a handler: its webhook, whatever the event lists

    def own_webhooks(self, events: list[Event]) -> set[str]:
        if self.fixed_webhooks is not None:
            return set(self.fixed_webhooks)
        return event_queries.own_webhook_ids(self.account_id, events)


def token_or_delivery_jwt(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate an API token with ``events:read`` (the account's events) or a delivery JWT (its
    webhook's, whatever scopes: it is no token)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        tracer = runtime.current().tracer()
        if tracer is None:
            return authenticated(*args, **kwargs)
        # A handler calling back with the delivery's traceparent joins the delivery's trace.
        with tracing.serving(tracer, f"GET {request.path}", request.headers) as span:
            answer = authenticated(*args, **kwargs)
            if span is not None and (webhook_ids := g.event_reader.fixed_webhooks):
                span.set_attribute(tracing.WEBHOOK_ID, sorted(webhook_ids))
            return answer

    def authenticated(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization")
        presented = callbacks.presented_jwt(header)
        if presented is not None:
            webhook = callbacks.delivery_webhook(presented)
            own = event_queries.of_webhook(webhook)
            g.event_reader = Reader(
                webhook.account_id, own, event_queries.webhook_listed(webhook),
                lambda webhook_id: own if webhook_id == webhook.id else false(),
                fixed_webhooks=frozenset({webhook.id}),
            )  # fmt: skip
        else:
            token = tenancy.authorize(header, scopes.EVENTS_READ, request.remote_addr)
            g.event_reader = Reader(
                token.account_id,
                event_queries.visible_condition(token.account),
                event_queries.visible_events(token.account),
                event_queries.webhook_filter(token.account),
            )
        return view(*args, **kwargs)

    wrapped.required_scopes = (scopes.EVENTS_READ,)  # type: ignore[attr-defined]  # or a delivery JWT
    return wrapped


@blueprint.get("/events")
@token_or_delivery_jwt
def list_events() -> Response:
    reader: Reader = g.event_reader
    rendered: dict[str, set[str]] = {}

    def render(event: Event) -> dict[str, Any]:
        return event_json(event, rendered.get("own", set()))

    def render_page(events: list[Event]) -> None:
        rendered["own"] = reader.own_webhooks(events)

    listed = reader.listed
    return paginated(
        listed.query, event_fields(reader.webhook_match), list(listed.order), render, key=Event.id,
        before_render=render_page, keyed=listed.keys,
    )  # fmt: skip


@blueprint.get("/events/<event_id>")
@token_or_delivery_jwt
def get_event(event_id: str) -> Response:
    reader: Reader = g.event_reader
    event = event_queries.get_event(event_id, reader.visible)
    if event is None:
        raise ServiceError(404, "EV_404", f"Event {event_id} not found.")
    return jsonify(event_json(event, reader.own_webhooks([event])))
