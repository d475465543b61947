"""``GET /public/v1/audit`` and ``/audit/{id}``: the account's audit trail (docs/security.md,
"Audit trail"). Read-only: the routes answer GET alone, so any other method is a JSON 405; an
entry of another account is a 404."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy import select
from werkzeug import Response

from webhookapp.api import rql
from webhookapp.api.routes import blueprint, token_required
from webhookapp.api.webhook_views import datetime_value, paginated
from webhookapp.core.errors import ServiceError
from webhookapp.core.times import isoformat
from webhookapp.models import AuditEntry
from webhookapp.services import audit_queries

AUDIT_FIELDS = {
    "id": rql.Field(AuditEntry.id, rql.integer, text=False, comparable=True),
    "at": rql.Field(AuditEntry.at, datetime_value, text=False, comparable=True),
    "action": rql.Field(AuditEntry.action),
    "actor.kind": rql.Field(AuditEntry.actor_kind),
    "actor.label": rql.Field(AuditEntry.actor_label),
    "actor.user_id": rql.Field(AuditEntry.actor_user_id, rql.integer, text=False),
    "actor.token_id": rql.Field(AuditEntry.actor_token_id, rql.integer, text=False),
    "object.type": rql.Field(AuditEntry.object_type),
    "object.id": rql.Field(AuditEntry.object_id),
}


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the API shows it."""
    return {
        "id": entry.id,
        "at": isoformat(entry.at),
        "action": entry.action,
        "actor": {
            "kind": entry.actor_kind,
            "label": entry.actor_label,
            "user_id": entry.actor_user_id,
            "token_id": entry.actor_token_id,
        },
        "object": {"type": entry.object_type, "id": entry.object_id, "label": entry.object_label},
        "client": {"address": entry.address, "user_agent": entry.user_agent},
        "changes": entry.changes,
    }


@blueprint.get("/audit")
@token_required
def list_audit() -> Response:
    query = select(AuditEntry).where(audit_queries.visible(g.api_token.account_id))
    return paginated(query, AUDIT_FIELDS, list(audit_queries.NEWEST_FIRST), audit_json, key=AuditEntry.id)


@blueprint.get("/audit/<int:entry_id>")
@token_required
def get_audit(entry_id: int) -> Response:
    entry = audit_queries.get_entry(g.api_token.account, entry_id) if entry_id < 2**31 else None
    if entry is None:
        raise ServiceError(404, "AUD_404", f"Audit entry {entry_id} not found.")
    return jsonify(audit_json(entry))
