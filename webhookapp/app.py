"""The application factory (docs/architecture.md, "Layers"): a list of ``register_*`` calls.

What each call wires lives in the module it belongs to: the database set-up in
:mod:`webhookapp.infra.database`, the login wall and the security headers in
:mod:`webhookapp.infra.http_guards`, the session cookie's rules in :mod:`webhookapp.auth.sessions`,
rq-dashboard in :mod:`webhookapp.ops.dashboard`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Flask, render_template, request
from werkzeug.exceptions import Conflict, InternalServerError, ServiceUnavailable
from werkzeug.middleware.proxy_fix import ProxyFix

from webhookapp.auth import sessions
from webhookapp.core.errors import ServiceError
from webhookapp.engine import runtime
from webhookapp.infra import crypto, database, http_guards, logs, templating, throttling
from webhookapp.infra.config import CONFIGS
from webhookapp.infra.extensions import csrf, db, dispose_engines, login_manager, migrate
from webhookapp.models import secret_columns
from webhookapp.ops import dashboard
from webhookapp.version import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATABASE_RETRY_AFTER = 5  # seconds: about what a PostgreSQL or Sentinel failover takes


def create_app(config_name: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    """Build the application.

    ``config_name`` is development, testing or production (default: ``WEBHOOKAPP_CONFIG``,
    else development); ``overrides`` replace single settings, as tests do.
    """
    app = Flask(
        "webhookapp",
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
        instance_path=os.path.join(ROOT, "instance"),
    )
    config_class = CONFIGS[config_name or os.environ.get("WEBHOOKAPP_CONFIG", "development")]
    app.config.from_object(config_class)
    app.config.update(overrides or {})
    config_class.finalize(app.config)
    if app.config["LOG_FORMAT"] != "text":  # text: Flask's and Python's defaults, as ever
        logs.configure(app.config["LOG_FORMAT"])  # before anything asks for app.logger
    os.makedirs(app.instance_path, exist_ok=True)  # the default SQLite database lives there
    app.config["VERSION"] = __version__
    box = crypto.install(app)  # a malformed key stops the start here, naming the setting

    register_proxy(app)
    register_extensions(app)
    with app.app_context():  # a key missing from the ring stops the start, naming it
        try:
            secret_columns.check_stored_keys(box, db.engine, timeout=app.config["WEBHOOK_START_CHECK_TIMEOUT"])
        except crypto.CryptoError:
            dispose_engines()  # no connection outlives the refused app
            raise
    register_blueprints(app)
    register_access_log(app)
    register_errorhandlers(app)
    register_commands(app)
    http_guards.register(app, policies={dashboard.BLUEPRINT: dashboard.SECURITY_POLICY})
    dashboard.register(app)
    templating.register_filters(app)
    return app


def register_extensions(app: Flask) -> None:
    """The Flask extensions, the database's connection rules, throttling, the session rules and
    the process's runtime (:mod:`webhookapp.engine.runtime`)."""
    runtime.install(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    throttling.init_app(app)
    with app.app_context():
        database.prepare(db.engine)
        database.add_generic_plans_engine(app)
    sessions.init_app(app)


def register_proxy(app: Flask) -> None:
    """Behind ``WEBHOOK_PROXY_COUNT`` reverse proxies, read the client's address, scheme and host
    from the headers they set (werkzeug's ``ProxyFix``): the login throttle, ``/metrics``' networks
    and the audit trail then see the client, not the proxy. Without the setting nobody's
    ``X-Forwarded-*`` headers are believed."""
    hops = int(app.config["WEBHOOK_PROXY_COUNT"])
    if hops > 0:
        proxied = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
        app.wsgi_app = proxied  # type: ignore[method-assign]


def register_blueprints(app: Flask) -> None:
    """The pages, the JSON API and the operations endpoints."""
    from webhookapp.activity.routes import blueprint as activity
    from webhookapp.api import blueprint as api
    from webhookapp.auth import security_views  # noqa: F401 - its views join the auth blueprint
    from webhookapp.auth.routes import blueprint as auth
    from webhookapp.ops import blueprint as ops
    from webhookapp.settings.routes import blueprint as settings
    from webhookapp.webhooks import (
        recovery_views,  # noqa: F401 - its views join the webhooks blueprint
        secret_rotation_views,  # noqa: F401 - its views join the webhooks blueprint
    )
    from webhookapp.webhooks.live import blueprint as live
    from webhookapp.webhooks.routes import blueprint as webhooks
    from webhookapp.webhooks.wizard import blueprint as wizard

    app.register_blueprint(auth)
    app.register_blueprint(webhooks)
    app.register_blueprint(live)
    app.register_blueprint(wizard)
    app.register_blueprint(settings)
    app.register_blueprint(activity)
    app.register_blueprint(api)
    csrf.exempt(api)  # token-authenticated JSON: no cookies, so no cross-site forgery
    app.register_blueprint(ops)
    csrf.exempt(ops)  # probes and scrapers: GET only, no cookies


def register_access_log(app: Flask) -> None:
    """Static files and the live pages' polls go to the access log at DEBUG: at INFO a page view
    would be five lines and an open page one more every few seconds."""
    from webhookapp.webhooks.live import POLL_PATHS

    logs.quiet_access(rf"{re.escape(app.static_url_path or '/static')}/|{POLL_PATHS}")


def register_errorhandlers(app: Flask) -> None:
    """Error pages for people, the API's JSON error shape under ``/public/``."""
    from flask_wtf.csrf import CSRFError

    def render_error(error: Any) -> Any:
        if getattr(error, "response", None) is not None:
            return error.response  # an answer made for the occasion (a throttled login page)
        code = getattr(error, "code", 500)
        if request.path.startswith("/public/"):
            message = getattr(error, "description", None) or "Internal error."
            # The error's own headers (a 405's Allow) go with the API's JSON body.
            headers = [item for item in getattr(error, "get_headers", list)() if item[0] != "Content-Type"]
            return ServiceError(code, f"HTTP_{code}", message).as_json(), code, headers
        return render_template("errors/error.html", code=code, error=error), code

    for code in (400, 403, 404, 405, 413, 429, 500):
        app.register_error_handler(code, render_error)

    @app.errorhandler(crypto.CryptoError)
    def unreadable_secret(error: crypto.CryptoError) -> Any:
        """A stored secret no key opens (a ciphertext moved from another row): said, not a bare 500."""
        message = f"A stored secret cannot be decrypted: {error}"
        app.logger.error(message)
        if request.path.startswith("/public/"):
            return ServiceError(409, "SECRET_001", message).as_json(), 409
        return render_template("errors/error.html", code=409, error=Conflict(message)), 409

    def database_unavailable(error: Exception) -> Any:
        """No database takes writes just now (a failover, a restart): 503 with ``Retry-After``,
        one warning line and no traceback. Any other database error is a 500, logged in full."""
        if not database.unavailable(error):
            app.logger.error("Unhandled database error on %s", request.path, exc_info=error)
            return render_error(InternalServerError(original_exception=error))
        app.logger.warning("The database is unavailable (%s: %s); answered 503.", type(error).__name__,
                           str(error).splitlines()[0] if str(error) else "")  # fmt: skip
        message = "The service is briefly unavailable (its database is not taking writes). Try again in a few seconds."
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
        if request.path.startswith("/public/"):
            return ServiceError(503, "HTTP_503", message).as_json(), 503, headers
        sessions.nobody_for_now()
        return render_template("errors/error.html", code=503, error=ServiceUnavailable(message)), 503, headers

    for error_class in database.UNAVAILABLE_ERRORS:
        app.register_error_handler(error_class, database_unavailable)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_template("errors/error.html", code=400, error=error, csrf=True), 400


def register_commands(app: Flask) -> None:
    """The ``flask`` commands (:mod:`webhookapp.cli`)."""
    from webhookapp.cli import register

    register(app)
