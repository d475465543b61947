"""rq-dashboard at /admin/rq (docs/architecture.md, "Operations"), for admin users only.

Its pages get a link back to the app and a dark style when the system asks for one
(``static/css/dashboard.css``); the short paths people try (``/admin/rq/workers``) lead to its pages.
"""

from __future__ import annotations

import re

from flask import Flask, abort, current_app, redirect, request, url_for
from flask_login import current_user
from markupsafe import escape
from werkzeug import Response

from webhookapp.engine import dispatch
from webhookapp.infra import redis_client
from webhookapp.infra.extensions import csrf
from webhookapp.infra.http_guards import same_origin

BLUEPRINT = "rq_dashboard"
PREFIX = "/admin/rq"
# /admin/rq/workers, /admin/rq/view/workers, /admin/rq/0/workers → the page of that name.
SHORTCUT = "rq_dashboard_shortcut"
SHORTCUT_RULES = (f"{PREFIX}/<any(queues, jobs, workers):page>", f"{PREFIX}/view/<any(queues, jobs, workers):page>",
                  f"{PREFIX}/<int:instance>/<any(queues, jobs, workers):page>")  # fmt: skip
_BODY = re.compile(r"<body[^>]*>")

# rq-dashboard renders its tables with underscore's _.template, which evaluates strings: its pages
# alone may eval. They are for admins only and take no input from anyone else.
SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _use_app_redis() -> None:
    current_app.redis_conn = dispatch.redis_connection()  # type: ignore[attr-defined]  # rq-dashboard's attribute


def register(app: Flask) -> None:
    """Mount rq-dashboard on the app's Redis, behind the admin check below."""
    import rq_dashboard

    # Its instance list shows the URL; its own connections are replaced by ours below.
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", redis_client.configured_url(app))
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    csrf.exempt(rq_dashboard.blueprint)  # its own JavaScript posts without our token; admins only
    rq_dashboard.web.setup_rq_connection(app)
    # After its own hook (which parses the URL again on every page): its pages use the app's
    # client, so they follow a Sentinel failover as every other user of Redis does. Added to this
    # app's hooks for the blueprint, not to the blueprint object, which every app shares.
    app.before_request_funcs.setdefault(BLUEPRINT, []).append(_use_app_redis)

    for rule in SHORTCUT_RULES:
        app.add_url_rule(rule, SHORTCUT, shortcut)
    app.after_request(dress)

    @app.before_request
    def admins_only() -> None:
        # An app-level hook: one on rq-dashboard's shared blueprint would pile up across apps.
        if request.blueprint != BLUEPRINT and request.endpoint != SHORTCUT:
            return
        if not (current_user.is_authenticated and current_user.is_admin):
            abort(403)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            if request.endpoint == "rq_dashboard.requeue_all":
                abort(405)  # it changes state: POST only
            return
        # Its actions post without our CSRF token: only a page of this origin may send them.
        if not same_origin(request.headers.get("Origin") or request.headers.get("Referer"), request.host_url):
            abort(403, "Dashboard actions are accepted from the dashboard's own pages only.")


def shortcut(page: str, instance: int = 0) -> Response:
    """The dashboard's page ``page`` (queues, jobs, workers) of Redis instance ``instance``."""
    return redirect(url_for(f"rq_dashboard.{page}_overview", instance_number=instance))


def dress(response: Response) -> Response:
    """A dashboard page with the link back to the app and the app's dark style for it."""
    if request.blueprint != BLUEPRINT or response.mimetype != "text/html" or response.is_streamed:
        return response
    page = response.get_data(as_text=True)
    style = url_for("static", filename="css/dashboard.css")
    back = (f'<nav class="app-return" aria-label="webhookapp"><a href="{escape(url_for("webhooks.index"))}">'
            "← Back to webhookapp</a></nav>")  # fmt: skip
    page = page.replace("</head>", f'<link rel="stylesheet" href="{escape(style)}">\n</head>', 1)
    page = _BODY.sub(lambda found: found.group(0) + back, page, count=1)
    response.set_data(page)
    return response
