"""The pieces the OpenAPI document is written with: content, errors, shared responses and
parameters, operations, and the RQL description of list endpoints (:mod:`.openapi`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhookapp.api.openapi_schemas import ref
from webhookapp.api.routes import BODY_MAX_BYTES
from webhookapp.api.webhook_views import DEFAULT_LIMIT, MAX_LIMIT
from webhookapp.engine.direct.validations import ANSWER_STATUSES

JSON = "application/json"
SECURITY_SCHEME = "ApiKey"
DELIVERY_JWT = "DeliveryJWT"


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
                "Missing, unknown, revoked or expired API token (or a delivery JWT that is expired, forged, or "
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
        "InsufficientScope": {
            **error("A valid API token without the scope this operation needs; the message names it.", "AUTH_403"),
            "headers": {
                "WWW-Authenticate": {
                    "required": True,
                    "schema": {"type": "string"},
                    "description": 'Bearer realm="webhookapp", error="insufficient_scope", scope="<the scopes>"',
                }
            },
        },
        "JSONRefused": error("Malformed JSON, or fields that break the rules.", "REQ_400", "VAL_001"),
        "TooLarge": error(f"The body is over {BODY_MAX_BYTES // 1024} KiB.", "REQ_413"),
        "NotJSON": error("The body was not sent with Content-Type: application/json.", "REQ_415"),
        "WebhookNotFound": error("No webhook with this id in the token's account.", "WH_404"),
        "EventNotFound": error("No event with this id that the caller may see.", "EV_404"),
        "RQLRefused": error("An RQL query, limit or offset that cannot be understood.", "RQL_001"),
        "Unavailable": {
            **error("No database takes writes just now (a failover, a restart). Try again after `Retry-After` "
                    "seconds; a write the server was committing when it stopped may have been stored, so post "
                    "events with your own `id`: a repeat of a stored one answers 200 as a duplicate.", "HTTP_503"),
            "headers": {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                                        "description": "Seconds to wait before trying again."}},
        },
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
    operation_id: str,
    tag: str,
    summary: str,
    answers: dict[str, Any],
    *,
    body: str | None = None,
    needs: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """One operation; ``needs`` are the token scopes its view requires (``api.routes.token_required``):
    named in its security requirement, ``x-required-scopes`` and description, with the 403."""
    found = {"operationId": operation_id, "tags": [tag], "summary": summary, **extra}
    if body:
        found["requestBody"] = {"required": True, "content": content(ref(body))}
    found["responses"] = {**answers, "401": shared("Unauthorized")} if found.get("security") != [] else answers
    if needs:
        others = [entry for entry in found.get("security", []) if SECURITY_SCHEME not in entry]
        found["security"] = [{SECURITY_SCHEME: list(needs)}, *others]
        found["x-required-scopes"] = list(needs)
        named = " and ".join(f"`{name}`" for name in needs)
        plural = "scopes" if len(needs) > 1 else "scope"
        found["description"] = f"{found.get('description', '')} An API token needs the {plural} {named}.".strip()
        found["responses"]["403"] = shared("InsufficientScope")
    return found


def validation_answers() -> dict[str, Any]:
    """The handler's answers with its JSON: any 2xx as 200, and its "invalid request" statuses."""
    answer = content(ref("ValidationAnswer"))
    found: dict[str, Any] = {
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


def components_parameters() -> dict[str, Any]:
    return {
        "webhook_id": {
            "name": "webhook_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "examples": ["WH-123-456-789"]},
        },
        "event_id": {
            "name": "event_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "examples": ["EV-123-456-789-012"]},
        },
        "attempt_id": {
            "name": "attempt_id",
            "in": "path",
            "required": True,
            "description": "An attempt of this webhook, as listed under .../attempts.",
            "schema": {"type": "integer", "minimum": 1, "examples": [42]},
        },
        "limit": {
            "name": "limit",
            "in": "query",
            "description": "How many items to return.",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        },
        "search": {
            "name": "search",
            "in": "query",
            "description": "Webhooks whose name, id or endpoint URL contains this text (in any case), or that an "
            "event matched whose id, client id (`external_id`) or object id is this text.",
            "schema": {"type": "string"},
        },
        "offset": {
            "name": "offset",
            "in": "query",
            "description": "How many items to skip.",
            "schema": {"type": "integer", "minimum": 0, "default": 0},
        },
    }
