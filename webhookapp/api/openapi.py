"""The OpenAPI 3.1 document of the public JSON API, served without a token at ``GET /public/v1/openapi.json``.

Paths and responses are written one entry per route and per status the route can answer (the
webhooks resource's in :mod:`.openapi_webhook_paths`, with the pieces of :mod:`.openapi_parts`);
the schemas come from :mod:`.openapi_schemas`. ``tests/http/test_openapi.py`` checks both directions:
every route is documented, and real responses match the document.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug import Response

from webhookapp.api.event_views import EVENT_FIELDS
from webhookapp.api.openapi_audit_paths import audit_entry_schema, audit_paths
from webhookapp.api.openapi_parts import (
    DELIVERY_JWT,
    SECURITY_SCHEME,
    components_parameters,
    content,
    error,
    json_errors,
    operation,
    page,
    parameter,
    responses,
    rql,
    shared,
    validation_answers,
)
from webhookapp.api.openapi_recovery_paths import recovery_paths, recovery_schemas
from webhookapp.api.openapi_schemas import ref, schemas
from webhookapp.api.openapi_webhook_paths import webhook_paths
from webhookapp.api.routes import blueprint
from webhookapp.core import scopes
from webhookapp.version import __version__

OPENAPI_VERSION = "3.1.0"
EVENT_PATH = "/events/{event_id}"
CALLBACK = (
    "A handler may also call with the delivery JWT it was just sent (`Authorization: Bearer <JWT>`, until the "
    "JWT's `exp`): it then sees its own webhook's events alone."
)


def paths() -> dict[str, Any]:
    event_answer = ref("EventResult")
    return {
        "/events": {
            "post": operation(
                "postEvent",
                "events",
                "Post a queue-change event",
                {
                    "200": {
                        "description": "A repeated client event id: the first result; nothing counted.",
                        "content": content({"allOf": [event_answer, {"properties": {"duplicate": {"const": True}}}]}),
                    },
                    "202": {
                        "description": "Accepted: the matched webhooks counted it and have a trigger pending.",
                        "content": content({"allOf": [event_answer, {"properties": {"duplicate": {"const": False}}}]}),
                    },
                    **json_errors(),
                    "404": error("Unknown product, or another vendor's.", "PRD_404"),
                    "503": shared("Unavailable"),
                },
                body="EventRequest",
                description="Matches every active `event` webhook of the object class and product in the token's "
                "account (every account for a platform token). Bad input changes nothing.",
                needs=(scopes.EVENTS_WRITE,),
            ),
            "get": operation(
                "listEvents",
                "events",
                "List events",
                {"200": page("Event", "A page of the events the caller may see."), "400": shared("RQLRefused")},
                parameters=[parameter("limit"), parameter("offset")],
                security=[{SECURITY_SCHEME: []}, {DELIVERY_JWT: []}],
                description=rql(
                    "the events the account posted and those that matched one of its webhooks (`webhooks` names "
                    "the account's own; `external_id` is the client's `id`; `webhook.id` takes `eq ne in out`)",
                    EVENT_FIELDS,
                    "eq(webhook.id,WH-123-456-789)&ordering(-created_at)&limit=10",
                )
                + " "
                + CALLBACK,
                needs=(scopes.EVENTS_READ,),
            ),
        },
        EVENT_PATH: {
            "parameters": [parameter("event_id")],
            "get": operation(
                "getEvent",
                "events",
                "Get an event",
                {
                    "200": {"description": "The event.", "content": content(ref("Event"))},
                    "404": shared("EventNotFound"),
                },
                security=[{SECURITY_SCHEME: []}, {DELIVERY_JWT: []}],
                description="Another account's event, or, for a delivery JWT, another webhook's, is a 404. " + CALLBACK,
                needs=(scopes.EVENTS_READ,),
            ),
        },
        "/validations": {
            "post": operation(
                "validate",
                "validations",
                "Validate a draft request now",
                {
                    **validation_answers(),
                    "404": error("Unknown product, or no enabled webhook of this type on it.", "PRD_404", "WH_404"),
                    "413": shared("TooLarge"),
                    "415": shared("NotJSON"),
                    "502": error(
                        "The handler failed: no answer within the validation timeout, another status (a refused "
                        "JWT, a missing route, a redirect, a 5xx), a body that is not JSON, or a blocked address.",
                        "VAL_502",
                    ),
                },
                body="ValidationRequest",
                description="Posts `request` to the product's active webhook of this validation type (the oldest "
                "if there are several), signed like a delivery, and answers with the handler's JSON and status. "
                "The call is recorded as an attempt and counted in the webhook's statistics.",
                needs=(scopes.VALIDATIONS_WRITE,),
            ),
        },
        "/openapi.json": {
            "get": operation(
                "getOpenAPI",
                "meta",
                "This document",
                {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": content(
                            {
                                "type": "object",
                                "required": ["openapi", "info", "paths"],
                                "properties": {"openapi": {"const": OPENAPI_VERSION}},
                            }
                        ),
                    }
                },
                security=[],
            ),
        },
        **webhook_paths(),
        **recovery_paths(),
        **audit_paths(),
    }


def document() -> dict[str, Any]:
    """The OpenAPI document, built anew (it is small) so that callers may change their copy."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "webhookapp",
            "version": __version__,
            "description": "The public JSON API of webhookapp: event ingest, the Connect-compatible webhook "
            "management resource, synchronous validations and the audit trail. Errors are `{error_code, errors[]}`.",
        },
        "servers": [{"url": "/public/v1"}],
        "security": [{SECURITY_SCHEME: []}],
        "tags": [{"name": name} for name in ("events", "webhooks", "validations", "audit", "meta")],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "An API token of the account, sent as `ApiKey <token>` or `Bearer <token>`. "
                    "A token has scopes, chosen when it is made; each operation names those it needs "
                    "(`x-required-scopes`), and a token without them gets a 403 (AUTH_403) naming the scope. "
                    "An expired token gets a 401 saying when it expired. The scopes: "
                    + "; ".join(f"`{name}`: {text}" for name, text in scopes.SCOPES.items()),
                },
                DELIVERY_JWT: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The JWT of a delivery, as the handler received it, until its `exp`: reads "
                    "that webhook's events (GET /events, GET /events/{event_id}) and nothing else.",
                },
            },
            "schemas": {**schemas(), **recovery_schemas(), "AuditEntry": audit_entry_schema()},
            "responses": responses(),
            "parameters": components_parameters(),
            "headers": {
                "Content-Range": {
                    "required": True,
                    "description": "`items <first>-<last>/<total>`, as Connect's API sends it; an empty page "
                    "reads `items <offset>-<offset>/<total>`. The total is exact up to 10,000 rows and on "
                    "a page shorter than `limit`; beyond, it is an estimate (see X-Total-Estimated).",
                    "schema": {"type": "string", "pattern": r"^items \d+-\d+/\d+$"},
                },
                "X-Total-Estimated": {
                    "description": "`true` when the total of Content-Range is the database's estimate: past 10,000 "
                    "rows, never less than the rows the page proves (plus one when the page is full), so a client "
                    "that pages until a short page sees every item.",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
        },
    }


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document; public, like the API's shape itself (no token needed)."""
    return jsonify(document())
