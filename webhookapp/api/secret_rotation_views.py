"""Staged secret rotation in the management API (:mod:`..services.secret_rotation`): the next
secret is generated (or given), switched to, or discarded; each answers the webhook."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from werkzeug import Response

from webhookapp.api.routes import blueprint, json_body, token_required
from webhookapp.api.webhook_views import own_webhook, webhook_body
from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError
from webhookapp.services import secret_rotation

NEXT_SECRET_PATH = "/notifications/webhooks/<webhook_id>/next-secret"


def _given_secret() -> str | None:
    """The body's ``jwt_secret_next``, if a body was sent: ``{}`` or no body means "generate"."""
    if not request.content_length and not request.is_json:
        return None
    body: Any = json_body()
    if not isinstance(body, dict) or set(body) - {"jwt_secret_next"}:
        raise ServiceError(400, "VAL_001", "The body may only hold 'jwt_secret_next'.")
    value = body.get("jwt_secret_next")
    if value is not None and not isinstance(value, str):
        raise ServiceError(400, "VAL_001", "'jwt_secret_next' must be a string.")
    return value


@blueprint.post(NEXT_SECRET_PATH)
@token_required(scopes.WEBHOOKS_WRITE, scopes.WEBHOOKS_SECRETS)
def generate_next_secret(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    secret_rotation.generate_next(webhook, _given_secret())
    return jsonify(webhook_body(webhook))


@blueprint.post(f"{NEXT_SECRET_PATH}/switch")
@token_required(scopes.WEBHOOKS_WRITE, scopes.WEBHOOKS_SECRETS)
def switch_secret(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    secret_rotation.switch_to_next(webhook)
    return jsonify(webhook_body(webhook))


@blueprint.delete(NEXT_SECRET_PATH)
@token_required(scopes.WEBHOOKS_WRITE)
def discard_next_secret(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    secret_rotation.discard_next(webhook)
    return jsonify(webhook_body(webhook))
