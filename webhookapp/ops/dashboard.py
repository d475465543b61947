"""rq-dashboard at /admin/rq (docs/architecture.md, "Operations"), for admin users only."""

from __future__ import annotations

from flask import Flask, abort, request
from flask_login import current_user

from webhookapp.infra.extensions import csrf
from webhookapp.infra.http_guards import same_origin

BLUEPRINT = "rq_dashboard"

# rq-dashboard renders its tables with underscore's _.template, which evaluates strings: its pages
# alone may eval. They are for admins only and take no input from anyone else.
SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def register(app: Flask) -> None:
    """Mount rq-dashboard on the app's Redis, behind the admin check below."""
    import rq_dashboard

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"] or "redis://127.0.0.1:6379/0")
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/admin/rq")
    csrf.exempt(rq_dashboard.blueprint)  # its own JavaScript posts without our token; admins only
    rq_dashboard.web.setup_rq_connection(app)

    @app.before_request
    def admins_only() -> None:
        # An app-level hook: one on rq-dashboard's shared blueprint would pile up across apps.
        if request.blueprint != BLUEPRINT:
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
