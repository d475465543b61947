"""The HTTP Settings tab's staged secret rotation: generate, switch to and discard the next
secret (:mod:`..services.secret_rotation`). Each action returns to the tab. Switching needs the
password confirmed within REAUTH_WINDOW (docs/security.md, "Asking for the password again"),
and the box "The handler accepts the next secret" ticked: it drops the secret handlers verify
with today, so a press by mistake would fail every delivery. Generating does not ask for the
password, for the new secret stays masked until revealed, which asks for it."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from werkzeug import Response

from webhookapp.auth import reauth
from webhookapp.models import Webhook
from webhookapp.services import secret_rotation
from webhookapp.services.webhook_changes import WebhookValidationError
from webhookapp.webhooks.routes import blueprint, own_webhook

SWITCH_NOT_CONFIRMED = (
    "Nothing was switched: tick “The handler accepts the next secret” first. After the switch, a handler that "
    "verifies only with the current secret rejects every delivery."
)


def _back(webhook: Webhook) -> Response:
    return redirect(url_for("webhooks.details", webhook_id=webhook.id, tab="http"))


@blueprint.post("/webhooks/<webhook_id>/secret/next")
def generate_next_secret(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    secret_rotation.generate_next(webhook)
    flash("A next secret was generated. Deliveries are still signed with the current one: make the handler "
          "accept both, then switch.", "success")  # fmt: skip
    return _back(webhook)


@blueprint.post("/webhooks/<webhook_id>/secret/switch")
@reauth.password_confirmed
def switch_secret(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    if request.form.get("confirm") != "yes":
        flash(SWITCH_NOT_CONFIRMED, "error")
        return _back(webhook)
    try:
        secret_rotation.switch_to_next(webhook)
    except WebhookValidationError as exc:
        flash(" ".join(exc.errors["jwt_secret_next"]), "error")
    else:
        flash("Deliveries are now signed with the new secret; the old one no longer works.", "success")
    return _back(webhook)


@blueprint.post("/webhooks/<webhook_id>/secret/discard")
def discard_next_secret(webhook_id: str) -> Response:
    webhook = own_webhook(webhook_id)
    secret_rotation.discard_next(webhook)
    flash("The next secret was discarded; the current one stays in use.", "success")
    return _back(webhook)
