"""The Deliveries tab's Recover: start a recovery of a time range and cancel it
(:mod:`..services.recoveries`). Each action returns to the tab, which shows the progress live."""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, request, url_for
from werkzeug import Response

from webhookapp.core.errors import ServiceError
from webhookapp.core.times import aware_utc
from webhookapp.services import recoveries
from webhookapp.webhooks.routes import blueprint, own_webhook


def _back(webhook_id: str) -> Response:
    return redirect(url_for("webhooks.details", webhook_id=webhook_id, tab="deliveries"))


def _moment(name: str, label: str) -> datetime | None:
    """The form's ``datetime-local`` field ``name``, read as UTC (the page shows UTC)."""
    value = request.form.get(name, "").strip()
    if not value:
        return None
    try:
        return aware_utc(datetime.fromisoformat(value[:40]))
    except ValueError:
        raise ServiceError(400, "VAL_001", f"{label}: enter a date and time such as 2026-12-06 09:30.") from None


@blueprint.post("/webhooks/<webhook_id>/recover")
def recover(webhook_id: str) -> Response:
    """Start sending the failed triggers of the range again, in the background."""
    webhook = own_webhook(webhook_id)
    try:
        since = _moment("since", "From")
        if since is None:
            raise ServiceError(400, "VAL_001", "From: enter the start of the range.")
        recovery = recoveries.start(webhook, since, _moment("until", "Until"))
    except ServiceError as exc:
        flash(" ".join(exc.messages), "error")
        return _back(webhook_id)
    found = "Nothing to send: no trigger of the range ended failed." if recovery.total == 0 else (
        f"Recovering {recovery.total} failed {'delivery' if recovery.total == 1 else 'deliveries'} in the background."
    )  # fmt: skip
    flash(found, "success")
    return _back(webhook_id)


@blueprint.post("/webhooks/<webhook_id>/recoveries/<int:recovery_id>/cancel")
def cancel_recovery(webhook_id: str, recovery_id: int) -> Response:
    """Cancel the running recovery: a request in flight ends, no other starts."""
    webhook = own_webhook(webhook_id)
    recovery = recoveries.get(webhook, recovery_id)
    if recovery is None:
        abort(404)
    try:
        recoveries.cancel(webhook, recovery)
    except ServiceError as exc:
        flash(" ".join(exc.messages), "error")
    else:
        flash(f"Recovery cancelled after {recovery.sent} of {recovery.total}.", "success")
    return _back(webhook_id)
