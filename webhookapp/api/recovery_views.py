"""Recover a time range through the API: ``POST /notifications/webhooks/{id}/recover`` and the
recovery it starts (docs/api.md, "Recover")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify
from werkzeug import Response

from webhookapp.api.routes import blueprint, json_body, token_required
from webhookapp.api.webhook_views import own_webhook
from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError
from webhookapp.core.times import aware_utc, isoformat
from webhookapp.models import Recovery, Webhook
from webhookapp.services import recoveries


def recovery_json(recovery: Recovery) -> dict[str, Any]:
    """A recovery as the API shows it."""
    return {
        "id": recovery.id,
        "webhook": {"id": recovery.webhook_id},
        "since": isoformat(recovery.since),
        "until": isoformat(recovery.until),
        "state": recovery.state,
        "total": recovery.total,
        "sent": recovery.sent,
        "succeeded": recovery.succeeded,
        "note": recovery.note,
        "created_at": isoformat(recovery.created_at),
        "finished_at": isoformat(recovery.finished_at),
    }


def _moment(body: dict[str, Any], name: str, required: bool) -> datetime | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ServiceError(400, "VAL_001", f"{name}: an ISO 8601 date and time is required.")
    try:
        return aware_utc(datetime.fromisoformat(value))
    except ValueError:
        raise ServiceError(400, "VAL_001", f"{name}: '{value[:40]}' is not an ISO 8601 date and time.") from None


def _own_recovery(webhook: Webhook, recovery_id: int) -> Recovery:
    recovery = recoveries.get(webhook, recovery_id)
    if recovery is None:
        raise ServiceError(404, "REC_404", f"Recovery {recovery_id} of webhook {webhook.id} not found.")
    return recovery


@blueprint.post("/notifications/webhooks/<webhook_id>/recover")
@token_required(scopes.WEBHOOKS_WRITE)
def recover(webhook_id: str) -> tuple[Response, int]:
    """Start a recovery of the webhook's failed triggers in ``[since, until)``; 202 with it."""
    webhook = own_webhook(webhook_id)
    body = json_body()
    if not isinstance(body, dict):
        raise ServiceError(400, "VAL_001", "The body must be a JSON object with since (and optionally until).")
    unknown = sorted(set(body) - {"since", "until"})
    if unknown:
        raise ServiceError(400, "VAL_001", f"Unknown field: {unknown[0][:40]}.")
    since = _moment(body, "since", required=True)
    assert since is not None
    recovery = recoveries.start(webhook, since, _moment(body, "until", required=False))
    return jsonify(recovery_json(recovery)), 202


@blueprint.get("/notifications/webhooks/<webhook_id>/recoveries/<int:recovery_id>")
@token_required(scopes.WEBHOOKS_READ)
def get_recovery(webhook_id: str, recovery_id: int) -> Response:
    """A recovery and its progress."""
    webhook = own_webhook(webhook_id)
    return jsonify(recovery_json(_own_recovery(webhook, recovery_id)))


@blueprint.post("/notifications/webhooks/<webhook_id>/recoveries/<int:recovery_id>/cancel")
@token_required(scopes.WEBHOOKS_WRITE)
def cancel_recovery(webhook_id: str, recovery_id: int) -> Response:
    """Cancel a running recovery; 409 once it has ended."""
    webhook = own_webhook(webhook_id)
    return jsonify(recovery_json(recoveries.cancel(webhook, _own_recovery(webhook, recovery_id))))
