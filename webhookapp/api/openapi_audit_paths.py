"""The OpenAPI paths and schema of the audit trail, ``/audit`` and ``/audit/{entry_id}``
(:mod:`.openapi`, :mod:`.audit_views`)."""

from __future__ import annotations

from typing import Any

from webhookapp.api.audit_views import AUDIT_FIELDS
from webhookapp.api.openapi_parts import content, error, operation, page, parameter, rql, shared
from webhookapp.api.openapi_schemas import DATE_TIME, closed, ref
from webhookapp.models import audit

READ_ONLY = "Entries are never changed or deleted through the API: any other method answers 405 (HTTP_405)."


def audit_paths() -> dict[str, Any]:
    return {
        "/audit": {
            "get": operation(
                "listAudit",
                "audit",
                "List the audit trail",
                {"200": page("AuditEntry", "A page of the account's recorded actions."), "400": shared("RQLRefused")},
                parameters=[parameter("limit"), parameter("offset")],
                description=rql(
                    "the account's recorded actions (who did what, when, on which object, from where)",
                    AUDIT_FIELDS,
                    "eq(object.id,WH-123-456-789)&eq(action,webhook.updated)&ge(at,2026-12-01T00:00:00)",
                )
                + " "
                + READ_ONLY,
            ),
        },
        "/audit/{entry_id}": {
            "parameters": [
                {
                    "name": "entry_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "examples": [42]},
                }
            ],
            "get": operation(
                "getAudit",
                "audit",
                "Get an audit entry",
                {
                    "200": {"description": "The entry.", "content": content(ref("AuditEntry"))},
                    "404": error("No entry with this id in the token's account.", "AUD_404"),
                },
                description=READ_ONLY,
            ),
        },
    }


def audit_entry_schema() -> dict[str, Any]:
    text = {"type": ["string", "null"]}
    change = {
        "type": "object",
        "description": "`before` and `after` for a field that changed (`after` alone for a new webhook's "
        "settings, or what an action used, such as a test request's URL); a secret shows `changed` or "
        "`revealed` only, never its value.",
        "properties": {"before": {}, "after": {}, "changed": {"const": True}, "revealed": {"const": True}},
        "additionalProperties": False,
    }
    return closed(
        {
            "id": {"type": "integer"},
            "at": DATE_TIME,
            "action": {"type": "string", "enum": list(audit.ACTIONS)},
            "actor": closed(
                {
                    "kind": {"type": "string", "enum": list(audit.ACTOR_KINDS)},
                    "label": {"type": "string", "description": "A user's email, a token's name and prefix, or system."},
                    "user_id": {"type": ["integer", "null"]},
                    "token_id": {"type": ["integer", "null"]},
                }
            ),
            "object": closed(
                {
                    "type": {**text, "examples": ["webhook", "token", "user"]},
                    "id": {**text, "examples": ["WH-123-456-789"]},
                    "label": text,
                }
            ),
            "client": closed(
                {
                    "address": {**text, "description": "The client's address, as the server saw it."},
                    "user_agent": {**text, "description": "Control characters removed, at most 300 characters."},
                }
            ),
            "changes": {"type": ["object", "null"], "additionalProperties": change},
        },
        description="One recorded action.",
    )
