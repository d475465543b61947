"""What each tab of the details page loads (:mod:`.tabs`), from the request's arguments: a tab
without a loader needs only the webhook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request

from webhookapp.engine.transport import client_tls
from webhookapp.models import Webhook
from webhookapp.services import audit_queries, carried_events, event_queries, recoveries, webhook_stats
from webhookapp.services import webhook_queries as queries
from webhookapp.webhooks import chart_svg, snippets

ATTEMPTS_PER_PAGE = 20
MAX_POSITION = 10**12


def _position() -> int | None:
    """``n``, the position the Older/Newer link knew for the page's first delivery (display only)."""
    position = request.args.get("n", type=int)
    return position if position is not None and 1 <= position <= MAX_POSITION else None


def _deliveries(webhook: Webhook) -> dict[str, object]:
    """The Deliveries tab: a keyset page of attempts, newest first, narrowed by outcome, and the
    newest recovery."""
    return {**deliveries_page(webhook), "recovery": recoveries.latest(webhook)}


def deliveries_page(webhook: Webhook) -> dict[str, Any]:
    """The Deliveries tab's page of attempts and its outcome filter (the live poll has the
    recovery already)."""
    outcome = request.args.get("outcome", "")
    attempts = queries.attempts_page(
        webhook, outcome, per_page=ATTEMPTS_PER_PAGE, before=request.args.get("before"),
        after=request.args.get("after"), oldest=request.args.get("at") == "oldest", first=_position(),
    )  # fmt: skip
    return {"attempts": attempts, "outcome": outcome}


def _events(webhook: Webhook) -> dict[str, object]:
    """The Events tab: a keyset page of the events the webhook matched, newest first, each with
    the attempt that carried it (none yet: pending)."""
    events = event_queries.events_page(
        webhook, per_page=ATTEMPTS_PER_PAGE, before=request.args.get("before"), after=request.args.get("after"),
        oldest=request.args.get("at") == "oldest", first=_position(),
    )  # fmt: skip
    return {"events": events, "carriers": carried_events.carriers(webhook, events.items)}


def _statistics(webhook: Webhook) -> dict[str, object]:
    """The Statistics tab: the chart of the span ``?span=`` names (24 hours by default)."""
    chart = webhook_stats.chart(webhook, webhook_stats.span_of(request.args.get("span")))
    return {"chart": chart, "chart_view": chart_svg.layout(chart), "spans": webhook_stats.SPANS}


def _handler_code(webhook: Webhook) -> dict[str, object]:
    """The Handler code tab: this webhook's handler in Python and in Node.js."""
    return {"snippets": snippets.render(webhook), "secret_env": snippets.SECRET_ENV}


def _activity(webhook: Webhook) -> dict[str, object]:
    """The Activity tab: a keyset page of the audit entries about this webhook, newest first."""
    entries = audit_queries.entries_page(
        webhook.account, audit_queries.Filters(object_id=webhook.id), per_page=ATTEMPTS_PER_PAGE,
        before=request.args.get("before"), after=request.args.get("after"), oldest=request.args.get("at") == "oldest",
        first=_position(),
    )  # fmt: skip
    return {"entries": entries}


def _http_settings(webhook: Webhook) -> dict[str, object]:
    """The HTTP Settings tab: what the client certificate is, if any (never its key)."""
    return {"client_certificate": client_tls.summary(webhook.tls_client_cert)}


TAB_LOADERS: dict[str, Callable[[Webhook], dict[str, object]]] = {
    "http": _http_settings,
    "statistics": _statistics,
    "handler": _handler_code,
    "deliveries": _deliveries,
    "events": _events,
    "activity": _activity,
}
