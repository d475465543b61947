"""The OpenAPI 3.1 document of the public JSON API, served without a token at ``GET /public/v1/openapi.json``.

Paths and responses are written here, one entry per route and per status the route can answer;
the schemas come from :mod:`.openapi_schemas`. ``tests/test_openapi.py`` checks both directions:
every route is documented, and real responses match the document.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug import Response

from ..engine.validations import ANSWER_STATUSES
from ..version import __version__
from .events import EVENT_FIELDS
from .openapi_schemas import components_parameters, ref, schemas
from .routes import BODY_MAX_BYTES, blueprint
from .webhooks import ATTEMPT_FIELDS, WEBHOOK_FIELDS

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
SECURITY_SCHEME = "ApiKey"
DELIVERY_JWT = "DeliveryJWT"
WEBHOOK_PATH = "/notifications/webhooks/{webhook_id}"
EVENT_PATH = "/events/{event_id}"
CALLBACK = (
    "A handler may also call with the delivery JWT it was just sent (`Authorization: Bearer <JWT>`, until the "
    "JWT's `exp`): it then sees its own webhook's events alone."
)


def content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def error(description: str, *codes: str) -> dict[str, Any]:
    """A response with an Error body; ``codes`` are the error_code values it may carry."""
    if codes:
        description += f" error_code: {', '.join(codes)}."
    return {"description": description, "content": content(ref("Error"))}


def shared(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def parameter(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def responses() -> dict[str, Any]:
    return {
        "Unauthorized": {
            **error(
                "Missing, unknown or revoked API token (or a delivery JWT that is expired, forged, or "
                "presented anywhere but the events).",
                "AUTH_001",
            ),
            "headers": {
                "WWW-Authenticate": {
                    "required": True,
                    "schema": {"type": "string"},
                    "description": 'Bearer realm="webhookapp"',
                }
            },
        },
        "JSONRefused": error("Malformed JSON, or fields that break the rules.", "REQ_400", "VAL_001"),
        "TooLarge": error(f"The body is over {BODY_MAX_BYTES // 1024} KiB.", "REQ_413"),
        "NotJSON": error("The body was not sent with Content-Type: application/json.", "REQ_415"),
        "WebhookNotFound": error("No webhook with this id in the token's account.", "WH_404"),
        "EventNotFound": error("No event with this id that the caller may see.", "EV_404"),
        "RQLRefused": error("An RQL query, limit or offset that cannot be understood.", "RQL_001"),
    }


def rql(what: str, fields: dict[str, Any], example: str) -> str:
    names = ", ".join(f"`{name}`" for name in fields)
    return (
        f"Lists {what}, newest first unless ordered otherwise. The query string may also hold RQL, as "
        f"Connect's API and its Python client speak it: `eq ne in out like ilike` on {names}, `gt ge lt le` on "
        "times and numbers, combined with `and or not`; `field=value` is short for `eq(field,value)`; `like` "
        "and `ilike` take `*` as the wildcard; `ordering(field,-field)` (or `ordering=field,-field`) sorts; "
        "`select(...)` is accepted and ignored; several terms joined "
        f"by `&` must all hold. Example: `?{example}`."
    )


def page(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "Content-Range": {"$ref": "#/components/headers/Content-Range"},
            "X-Total-Estimated": {"$ref": "#/components/headers/X-Total-Estimated"},
        },
        "content": content({"type": "array", "items": ref(schema_name)}),
    }


def operation(
    operation_id: str, tag: str, summary: str, answers: dict[str, Any], *, body: str | None = None, **extra: Any
) -> dict[str, Any]:
    found = {"operationId": operation_id, "tags": [tag], "summary": summary, **extra}
    if body:
        found["requestBody"] = {"required": True, "content": content(ref(body))}
    found["responses"] = {**answers, "401": shared("Unauthorized")} if found.get("security") != [] else answers
    return found


def validation_answers() -> dict[str, Any]:
    """The handler's answers with its JSON: any 2xx as 200, and its "invalid request" statuses."""
    answer = content(ref("ValidationAnswer"))
    found = {
        "200": {
            "description": "The handler accepted the request (any 2xx); its JSON is returned as is.",
            "content": answer,
        },
    }
    for status in ANSWER_STATUSES:
        objected = f"The handler objected with {status}: its JSON, the request with value_error filled in."
        found[str(status)] = {"description": objected, "content": answer}
    if "400" in found:  # a refused body is a 400 too
        found["400"] = {
            "description": f"{found['400']['description']} Or the body was refused: error_code REQ_400, VAL_001.",
            "content": content({"anyOf": [ref("Error"), ref("ValidationAnswer")]}),
        }
    else:
        found["400"] = shared("JSONRefused")
    return found


def json_errors() -> dict[str, Any]:
    return {"400": shared("JSONRefused"), "413": shared("TooLarge"), "415": shared("NotJSON")}


def paths() -> dict[str, Any]:
    webhook = {"description": "The webhook.", "content": content(ref("Webhook"))}
    item_parameters = [parameter("webhook_id")]
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
                },
                body="EventRequest",
                description="Matches every active `event` webhook of the object class and product in the token's "
                "account (every account for a platform token). Bad input changes nothing.",
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
            ),
        },
        "/notifications/webhooks": {
            "get": operation(
                "listWebhooks",
                "webhooks",
                "List webhooks",
                {"200": page("Webhook", "A page of the account's webhooks."), "400": shared("RQLRefused")},
                parameters=[parameter("limit"), parameter("offset"), parameter("search")],
                description=rql(
                    "the account's webhooks",
                    WEBHOOK_FIELDS,
                    "and(eq(active,true),ilike(label,*erp*))&ordering(label)&limit=10",
                ),
            ),
            "post": operation(
                "createWebhook",
                "webhooks",
                "Create a webhook",
                {"201": {"description": "Created.", "content": content(ref("Webhook"))}, **json_errors()},
                body="WebhookCreate",
                description="An unusable product or type is a 400 (VAL_001) naming the field.",
            ),
        },
        WEBHOOK_PATH: {
            "parameters": item_parameters,
            "get": operation(
                "getWebhook", "webhooks", "Get a webhook", {"200": webhook, "404": shared("WebhookNotFound")}
            ),
            "put": operation(
                "updateWebhook",
                "webhooks",
                "Update a webhook (partial)",
                {"200": webhook, **json_errors(), "404": shared("WebhookNotFound")},
                body="WebhookUpdate",
            ),
            "delete": operation(
                "deleteWebhook",
                "webhooks",
                "Delete a webhook and its attempt log",
                {"204": {"description": "Deleted."}, "404": shared("WebhookNotFound")},
            ),
        },
        f"{WEBHOOK_PATH}/trigger": {
            "parameters": item_parameters,
            "post": operation(
                "triggerWebhook",
                "webhooks",
                "Trigger Now",
                {
                    "200": {
                        "description": "An event webhook: counted as an event, its pending trigger due now (an "
                        "out-of-order webhook is re-enabled). A validation webhook: a sample request was posted to "
                        "its handler, and the answer, whatever it was, is returned with the webhook.",
                        "content": content({"oneOf": [ref("Webhook"), ref("ValidationTriggerAnswer")]}),
                    },
                    "400": error("The webhook is disabled: enable it first.", "VAL_001"),
                    "404": shared("WebhookNotFound"),
                },
                description="Takes no body.",
            ),
        },
        f"{WEBHOOK_PATH}/next-secret": {
            "parameters": item_parameters,
            "post": operation(
                "generateNextSecret",
                "webhooks",
                "Generate (or set) the next secret",
                {"200": webhook, **json_errors(), "404": shared("WebhookNotFound")},
                description="Staged rotation: keeps a next secret beside the current one; deliveries are still "
                "signed with jwt_secret. Without a body (or with `{}`) a strong secret is generated; "
                "`{\"jwt_secret_next\": \"...\"}` sets one. Replaces an earlier next secret.",
                requestBody={"required": False, "content": content(ref("NextSecret"))},
            ),
            "delete": operation(
                "discardNextSecret",
                "webhooks",
                "Discard the next secret",
                {"200": webhook, "404": shared("WebhookNotFound")},
                description="The current secret stays in use. Nothing happens when there is no next secret.",
            ),
        },
        f"{WEBHOOK_PATH}/next-secret/switch": {
            "parameters": item_parameters,
            "post": operation(
                "switchToNextSecret",
                "webhooks",
                "Switch to the next secret",
                {
                    "200": webhook,
                    "400": error("There is no next secret to switch to.", "VAL_001"),
                    "404": shared("WebhookNotFound"),
                },
                description="Deliveries signed from now on use the next secret, which becomes jwt_secret; the old "
                "one is dropped. Takes no body.",
            ),
        },
        f"{WEBHOOK_PATH}/attempts": {
            "parameters": item_parameters,
            "get": operation(
                "listAttempts",
                "webhooks",
                "List delivery attempts",
                {
                    "200": page("Attempt", "A page of the webhook's attempts."),
                    "400": shared("RQLRefused"),
                    "404": shared("WebhookNotFound"),
                },
                parameters=[parameter("limit"), parameter("offset")],
                description=rql(
                    "the webhook's delivery and validation attempts", ATTEMPT_FIELDS, "eq(success,false)&limit=10"
                ),
            ),
        },
        f"{WEBHOOK_PATH}/attempts/{{attempt_id}}/redeliver": {
            "parameters": [*item_parameters, parameter("attempt_id")],
            "post": operation(
                "redeliverAttempt",
                "webhooks",
                "Redeliver an attempt",
                {
                    "201": {
                        "description": "Sent again and recorded, whatever the handler answered: the new attempt, "
                        "its redelivery_of set.",
                        "content": content(ref("Attempt")),
                    },
                    "400": error(
                        "The webhook is disabled (enable it first), or a validation attempt's recorded body is "
                        "not a JSON object.",
                        "VAL_001",
                    ),
                    "404": error(
                        "No such webhook in the token's account, or no such attempt of it.", "WH_404", "ATT_404"
                    ),
                },
                description="Sends the attempt's request again now, with the webhook's current HTTP settings and a "
                "freshly signed JWT, and waits for the answer (at most the validation timeout). A trigger's attempt "
                "is sent with a trigger's payload; a validation's, with the request body it recorded. It counts no "
                "event and changes neither the statistics nor the retry schedule. Takes no body.",
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
    }


def document() -> dict[str, Any]:
    """The OpenAPI document, built anew (it is small) so that callers may change their copy."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "webhookapp",
            "version": __version__,
            "description": "The public JSON API of webhookapp: event ingest, the Connect-compatible webhook "
            "management resource and synchronous validations. Errors are `{error_code, errors[]}`.",
        },
        "servers": [{"url": "/public/v1"}],
        "security": [{SECURITY_SCHEME: []}],
        "tags": [{"name": name} for name in ("events", "webhooks", "validations", "meta")],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "An API token of the account, sent as `ApiKey <token>` or `Bearer <token>`.",
                },
                DELIVERY_JWT: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The JWT of a delivery, as the handler received it, until its `exp`: reads "
                    "that webhook's events (GET /events, GET /events/{event_id}) and nothing else.",
                },
            },
            "schemas": schemas(),
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
