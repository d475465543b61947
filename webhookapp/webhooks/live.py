"""The live endpoints the details page and the list poll (docs/architecture.md, "Live pages").

Each answers the server-rendered HTML of the page's ``data-live`` regions, from the same macros
the page renders them with (``templates/webhooks/_live.html``), under an ``ETag`` that is a
version of what they show: a poll of an unchanged page is a 304 after one indexed read, and
renders nothing. Another account's webhook is a 404, as on the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    get_template_attribute,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug import Response

from webhookapp.auth.sessions import signed_in_user
from webhookapp.core.times import isoformat, utcnow
from webhookapp.core.urls import safe_local_path
from webhookapp.engine.maintenance import hourly
from webhookapp.models import Webhook
from webhookapp.services import live, recoveries, webhook_stats
from webhookapp.services import webhook_queries as queries
from webhookapp.webhooks import tab_loaders, tabs
from webhookapp.webhooks.tab_loaders import TAB_LOADERS

blueprint = Blueprint("live", __name__)
PARTS = "webhooks/_live.html"
# The paths the pages poll (the routes below), logged at DEBUG (webhookapp/app.py).
POLL_PATHS = r"/webhooks/(?:[^/]+/)?live$"


@blueprint.app_template_global("in_flight")
def in_flight(webhook: Webhook) -> live.Sending | None:
    """The webhook's attempt in flight, for the templates ("Sending… 4 s")."""
    return live.sending(webhook)


def _part(name: str) -> Callable[..., Markup]:
    macro: Callable[..., Markup] = get_template_attribute(PARTS, name)
    return macro


@blueprint.get("/webhooks/<webhook_id>/live")
def details(webhook_id: str) -> Response:
    """The details page's regions for ``tab``: the status everywhere, the statistics and the
    chart of ``span`` on their tab (with the figures of the hour now running), the deliveries on
    the newest page of theirs (``paged`` marks an older page, left alone)."""
    found = live.webhook_with_newest_attempt(signed_in_user().account_id, webhook_id)
    if found is None:
        abort(404)
    webhook, newest = found
    tab = tabs.chosen_tab(webhook, request.args.get("tab"))
    outcome = request.args.get("outcome", "")
    deliveries = tab == "deliveries" and not request.args.get("paged")
    # The chart changes with every attempt (a redelivery moves no counter) and with the hour.
    span = webhook_stats.span_of(request.args.get("span"))
    charted = tab == "statistics" and (newest, span, hourly.floor_hour(utcnow()))
    recovery = recoveries.latest(webhook) if tab == "deliveries" else None
    recovered = recovery and (recovery.id, recovery.state, recovery.sent, recovery.succeeded, recovery.total)
    version = live.version(live.state(webhook), tab, deliveries and (newest, outcome), charted, recovered)
    if request.if_none_match.contains(version):
        return _not_modified(version)
    regions = {name: _part(name)(webhook) for name in ("badge", "retry", "banner", "status")}
    extra: dict[str, Any] = {}
    if tab == "statistics":
        regions["statistics"] = _part("statistics")(webhook)
        regions["chart"], extra["chart_hour"] = _chart(webhook)
    if tab == "deliveries":
        regions["recovery"] = _part("recovery")(webhook, recovery)
    if deliveries:
        page = tab_loaders.deliveries_page(webhook)
        regions["deliveries"] = _part("deliveries")(webhook, page["attempts"], page["outcome"])
    poll_after_ms = live.FAST_MS if recovery is not None and recovery.running else live.poll_after_ms([webhook])
    return _answer(version, regions, poll_after_ms, **extra)


def _chart(webhook: Webhook) -> tuple[Markup, dict[str, object]]:
    """The Statistics tab's chart of the span asked for, as the page renders it, and the figures
    of its hour now running (its last bar)."""
    loaded = TAB_LOADERS["statistics"](webhook)
    chart = loaded["chart"]
    assert isinstance(chart, webhook_stats.Chart)
    now = chart.hours[-1]
    figures: dict[str, object] = {"hour": isoformat(now.hour), "successes": now.successes, "failures": now.failures,
                                  "p50_ms": now.p50, "p95_ms": now.p95}  # fmt: skip
    return Markup(render_template("webhooks/_chart.html", webhook=webhook, **loaded)), figures


@blueprint.get("/webhooks/live")
def webhooks() -> Response:
    """The list's Status and "Success, 24 h" cells and row menus of ``ids`` (the ids on the page,
    comma separated): as many as a page holds, the account's own; others are left out. The menus'
    actions come back to ``next``, the list page."""
    asked = [webhook_id for webhook_id in request.args.get("ids", "").split(",") if webhook_id]
    asked = list(dict.fromkeys(asked))[: current_app.config["WEBHOOKS_PER_PAGE"]]
    hooks = live.own_webhooks(signed_in_user().account_id, asked)
    rates = queries.success_rates([webhook.id for webhook in hooks])
    version = live.version(*(live.state(webhook) for webhook in hooks), sorted(rates.items()))
    if request.if_none_match.contains(version):
        return _not_modified(version)
    back = safe_local_path(request.args.get("next"), url_for("webhooks.index"))
    regions: dict[str, str] = {}
    for webhook in hooks:
        regions[f"status:{webhook.id}"] = _part("list_status")(webhook)
        regions[f"health:{webhook.id}"] = _part("list_health")(rates.get(webhook.id))
        regions[f"menu:{webhook.id}"] = _part("list_menu")(webhook, back)
    return _answer(version, regions, live.poll_after_ms(hooks))


def _answer(version: str, regions: Mapping[str, str], poll_after_ms: int, **extra: Any) -> Response:
    response = jsonify(version=version, regions={name: str(html) for name, html in regions.items()},
                       poll_after_ms=poll_after_ms, **extra)  # fmt: skip
    return _conditional(response, version)


def _not_modified(version: str) -> Response:
    return _conditional(make_response("", 304), version)


def _conditional(response: Response, version: str) -> Response:
    response.set_etag(version)
    # Revalidated on every poll; private, for the regions hold the account's data and CSRF tokens.
    response.headers["Cache-Control"] = "private, no-cache"
    return response
