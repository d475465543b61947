"""``/public/v1/notifications/webhooks``: the management API Connect's Python client drives
(docs/architecture.md, "Management API")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from flask import g, jsonify, request
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import selectinload
from werkzeug import Response

from webhookapp.api import rql
from webhookapp.api.routes import blueprint, json_body, token_required
from webhookapp.api.serializers import attempt_json, webhook_json, writable_fields
from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError
from webhookapp.core.times import aware_utc
from webhookapp.engine.direct import redelivery, validations
from webhookapp.infra import paging
from webhookapp.models import Attempt, Webhook
from webhookapp.services import attempt_pages, audit
from webhookapp.services import webhook_changes as service
from webhookapp.services import webhook_queries as queries

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1


def datetime_value(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise rql.RQLError(f"'{text}' is not an ISO 8601 date and time.") from None
    return aware_utc(moment)


WEBHOOK_FIELDS = {
    "id": rql.Field(Webhook.id),
    "label": rql.Field(Webhook.label),
    "active": rql.Field(Webhook.active, rql.boolean, text=False),
    "type": rql.Field(Webhook.type),
    "object_class": rql.Field(Webhook.object_class),
    "product.id": rql.Field(Webhook.product_id),
    "created_at": rql.Field(Webhook.created_at, datetime_value, text=False, comparable=True),
}
ATTEMPT_FIELDS = {
    "id": rql.Field(Attempt.id, rql.integer, text=False, comparable=True),
    "success": rql.Field(Attempt.success, rql.boolean, text=False),
    "kind": rql.Field(Attempt.kind),
    "started_at": rql.Field(Attempt.started_at, datetime_value, text=False, comparable=True),
}


def paginated(
    query: Select[Any],
    fields: dict[str, rql.Field],
    default_order: list[Any],
    render: Any,
    *,
    key: Any,
    options: Sequence[Any] = (),
    search: Any = None,
    before_render: Callable[[list[Any]], None] | None = None,
    keyed: Callable[[ColumnElement[bool] | None], tuple[Select[Any], Any]] | None = None,
    far_end: Callable[[int, int], tuple[list[Any], int] | None] | None = None,
) -> Response:
    """Apply RQL, ``limit``, ``offset`` (and ``search``, where the resource has one) to ``query``;
    answer with a Content-Range header (:func:`.paging.api_total`). The page's rows are read by
    ``key`` (:func:`.paging.deferred_rows`) with the loader ``options``; ``before_render`` sees
    them first (to load what the whole page needs in one statement). ``keyed``, given the filters'
    condition (None for none), answers a query of the same rows' keys and its key column, in the
    default order: it finds and counts them instead, unless a search or a client's order applies.
    ``far_end``, given ``offset`` and ``limit``, may answer an unfiltered page in the default
    order and its exact total itself (a page past the middle, read from the other end), or None."""
    parsed = rql.parse_query(request.query_string.decode("latin-1"), fields, default_order)
    try:
        limit = int(parsed.params.get("limit", DEFAULT_LIMIT))
        offset = int(parsed.params.get("offset", 0))
    except ValueError:
        raise ServiceError(400, "RQL_001", "limit and offset must be whole numbers.") from None
    if not 0 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise ServiceError(
            400, "RQL_001", f"limit must be 0 to {MAX_LIMIT} and offset 0 or more (at most {MAX_OFFSET})."
        )
    if "search" in parsed.params:
        if search is None:
            raise ServiceError(400, "RQL_001", "This list has no search; use RQL filters.")
        query = query.where(search(parsed.params["search"]))
    order = list(parsed.order_by)
    if parsed.order_by is not default_order:
        order.append(key)  # a client's ordering may tie: the key keeps offset pages disjoint
    query = query.where(parsed.where).order_by(*order)
    listed, listed_key = query, key
    as_listed = "search" not in parsed.params and parsed.order_by is default_order
    if keyed is not None and as_listed:
        listed, listed_key = keyed(parsed.where if parsed.filtered else None)
    from_far_end = far_end(offset, limit) if far_end is not None and as_listed and not parsed.filtered else None
    if from_far_end is not None:
        items, total = from_far_end
        exact = True
    else:
        items = paging.deferred_rows(listed, listed_key, offset, limit, options, row_key=key) if limit else []
        total, exact = paging.api_total(listed, listed_key, offset, len(items), limit)
    if before_render is not None:
        before_render(items)
    response = jsonify([render(item) for item in items])
    last = offset + len(items) - 1 if items else offset
    response.headers["Content-Range"] = f"items {offset}-{last}/{total}"
    if not exact:
        response.headers["X-Total-Estimated"] = "true"
    return response


def webhook_body(webhook: Webhook) -> dict[str, Any]:
    """The webhook as this request's token may see it: its secrets only with ``webhooks:secrets``."""
    return webhook_json(webhook, with_secrets=g.api_token.allows(scopes.WEBHOOKS_SECRETS))


def own_webhook(webhook_id: str) -> Webhook:
    webhook = queries.get_webhook(g.api_token.account, webhook_id)
    if webhook is None:
        raise ServiceError(404, "WH_404", f"Webhook {webhook_id} not found.")
    return webhook


def _service_fields(body: Any, webhook: Webhook | None = None) -> dict[str, Any]:
    """The service's fields from a create (``webhook`` None) or update body."""
    fields, errors = writable_fields(body)
    if errors:
        raise ServiceError(400, "VAL_001", *errors)
    if (fields.get("jwt_secret") or "").strip() and not g.api_token.allows(scopes.WEBHOOKS_SECRETS):
        # A token that may not read secrets may not choose one either (it would know it).
        raise scopes.InsufficientScope(scopes.WEBHOOKS_SECRETS)
    if "object_class" in fields or "type" in fields:
        # On update, a half left out keeps its current value.
        object_class = fields.pop("object_class", webhook.object_class if webhook else "")
        type_ = fields.pop("type", webhook.type if webhook else "")
        fields["type_key"] = f"{object_class}.{type_}"
    return fields


@blueprint.get("/notifications/webhooks")
@token_required(scopes.WEBHOOKS_READ)
def list_webhooks() -> Response:
    query = select(Webhook).where(Webhook.account_id == g.api_token.account_id)
    return paginated(
        query, WEBHOOK_FIELDS, list(queries.NEWEST_WEBHOOKS_FIRST), webhook_body, key=Webhook.id,
        options=[selectinload(Webhook.product), selectinload(Webhook.account)],
        search=lambda text: queries.search_condition(text, g.api_token.account),
    )  # fmt: skip


@blueprint.post("/notifications/webhooks")
@token_required(scopes.WEBHOOKS_WRITE)
def create_webhook() -> tuple[Response, int]:
    fields = _service_fields(json_body())
    if "type_key" not in fields:
        raise ServiceError(400, "VAL_001", "'object_class' and 'type' are required.")
    webhook = service.create_webhook(g.api_token.account, fields)
    return jsonify(webhook_body(webhook)), 201


@blueprint.get("/notifications/webhooks/<webhook_id>")
@token_required(scopes.WEBHOOKS_READ)
def get_webhook(webhook_id: str) -> Response:
    return jsonify(webhook_body(own_webhook(webhook_id)))


@blueprint.put("/notifications/webhooks/<webhook_id>")
@token_required(scopes.WEBHOOKS_WRITE)
def update_webhook(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    fields = _service_fields(json_body(), webhook)
    service.update_webhook(webhook, fields)
    return jsonify(webhook_body(webhook))


@blueprint.delete("/notifications/webhooks/<webhook_id>")
@token_required(scopes.WEBHOOKS_WRITE)
def delete_webhook(webhook_id: str) -> tuple[str, int]:
    service.delete_webhook(own_webhook(webhook_id))
    return "", 204


@blueprint.post("/notifications/webhooks/<webhook_id>/trigger")
@token_required(scopes.WEBHOOKS_WRITE)
def trigger_webhook(webhook_id: str) -> Response:
    """Trigger Now. A validation webhook gets a sample request at once and its answer is returned."""
    webhook = own_webhook(webhook_id)
    if webhook.catalog_entry.kind == "validation":
        answer = validations.send_sample(webhook, audit.request_actor())
        return jsonify({"webhook": webhook_body(webhook), "validation": answer.as_json()})
    service.trigger_now(webhook)
    return jsonify(webhook_body(webhook))


@blueprint.get("/notifications/webhooks/<webhook_id>/attempts")
@token_required(scopes.WEBHOOKS_READ)
def list_attempts(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    query = select(Attempt).where(Attempt.webhook_id == webhook.id)
    return paginated(
        query,
        ATTEMPT_FIELDS,
        [Attempt.started_at.desc(), Attempt.id.desc()],
        attempt_json,
        key=Attempt.id,
        far_end=lambda offset, limit: attempt_pages.past_the_middle(webhook, offset, limit),
    )


@blueprint.post("/notifications/webhooks/<webhook_id>/attempts/<int:attempt_id>/redeliver")
@token_required(scopes.WEBHOOKS_WRITE)
def redeliver_attempt(webhook_id: str, attempt_id: int) -> tuple[Response, int]:
    """Redeliver: send the attempt's request again now; the new attempt (its ``redelivery_of``
    set) is returned. Nothing else about the webhook changes (:mod:`..engine.redelivery`)."""
    webhook = own_webhook(webhook_id)
    original = queries.get_attempt(webhook, attempt_id)
    if original is None:
        raise ServiceError(404, "ATT_404", f"Attempt {attempt_id} of webhook {webhook.id} not found.")
    return jsonify(attempt_json(redelivery.redeliver(webhook, original, audit.request_actor()))), 201
