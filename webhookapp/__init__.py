"""webhookapp: a self-hosted webhook service in the style of CloudBlue Connect's Webhooks module."""

from __future__ import annotations

import os
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, abort, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user
from sqlalchemy import event

from . import logs, throttling
from .config import CONFIGS
from .errors import ServiceError
from .extensions import csrf, db, login_manager, migrate, ping_idle_connections
from .version import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# rq-dashboard renders its tables with underscore's _.template, which evaluates strings: its pages
# alone may eval. They are for admins only and take no input from anyone else.
DASHBOARD_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def create_app(config_name: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    """Build the application.

    ``config_name`` is development, testing or production (default: ``WEBHOOKAPP_CONFIG``,
    else development); ``overrides`` replace single settings, as tests do.
    """
    app = Flask(
        __name__,
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

    app.session_interface = NoSessionForTheApi()
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_login_wall(app)
    register_monitoring(app)
    register_security_headers(app)
    register_input_guard(app)
    register_template_helpers(app)
    return app


class NoSessionForTheApi(SecureCookieSessionInterface):
    """The token-authenticated API (``/public/``) neither reads nor sets the session cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/public/"):
            return self.session_class()  # empty; saved only if modified, which the API never does
        return super().open_session(app, request)


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    throttling.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _private_file(db.engine.url.database)
            event.listen(db.engine, "connect", _sqlite_pragmas)
        ping_idle_connections(db.engine)

    from .models import User

    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        """The user of a session or remember cookie, if its session token is still the user's."""
        user_id, _, token = session_id.partition(":")
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        if user is None or not token or not secrets.compare_digest(token, user.session_token):
            return None
        return user


def _private_file(path: str | None) -> None:
    """The SQLite file holds JWT secrets: readable by its owner alone (0600), like
    ``instance/secret_key``. SQLite gives its -wal and -shm files the same mode."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """SQLite as a shared database: WAL so that readers never block the worker's writes, a busy
    timeout instead of instant "database is locked", foreign keys and LIKE as in PostgreSQL."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA case_sensitive_like=ON")  # LIKE as PostgreSQL has it; ilike lowers both sides
    cursor.close()


def register_blueprints(app: Flask) -> None:
    from .api import blueprint as api
    from .auth.routes import blueprint as auth
    from .ops import blueprint as ops
    from .settings.routes import blueprint as settings
    from .webhooks import rotation  # noqa: F401 - its views join the webhooks blueprint
    from .webhooks.live import blueprint as live
    from .webhooks.routes import blueprint as webhooks
    from .webhooks.wizard import blueprint as wizard

    app.register_blueprint(auth)
    app.register_blueprint(webhooks)
    app.register_blueprint(live)
    app.register_blueprint(wizard)
    app.register_blueprint(settings)
    app.register_blueprint(api)
    csrf.exempt(api)  # token-authenticated JSON: no cookies, so no cross-site forgery
    app.register_blueprint(ops)
    csrf.exempt(ops)  # probes and scrapers: GET only, no cookies


def register_errorhandlers(app: Flask) -> None:
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

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_template("errors/error.html", code=400, error=error, csrf=True), 400


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)


# Reachable without a login session: the login page, static files, the token-authenticated API,
# and the operations endpoints (health checks; metrics, which check their own access).
PUBLIC_ENDPOINTS = {"auth.login", "static"}
PUBLIC_BLUEPRINTS = {"api", "ops"}


def register_login_wall(app: Flask) -> None:
    """Every page needs a login unless its endpoint is listed as public (deny by default)."""

    @app.before_request
    def require_login() -> Response | None:
        if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in PUBLIC_BLUEPRINTS:
            return None
        if request.path.startswith("/public/"):
            return None  # unknown API paths get a JSON 404, not the login page
        if current_user.is_authenticated:
            return None
        return login_manager.unauthorized()


def register_monitoring(app: Flask) -> None:
    """rq-dashboard at /admin/rq, for admin users only."""
    import rq_dashboard

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"] or "redis://127.0.0.1:6379/0")
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/admin/rq")
    csrf.exempt(rq_dashboard.blueprint)  # its own JavaScript posts without our token; admins only
    rq_dashboard.web.setup_rq_connection(app)

    @app.before_request
    def admins_only() -> None:
        # An app-level hook: one on rq-dashboard's shared blueprint would pile up across apps.
        if request.blueprint != "rq_dashboard":
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


def register_input_guard(app: Flask) -> None:
    """No NUL reaches a query from the URL: a path holding one names nothing (404), a query
    parameter holding one is refused (400). Form fields and JSON bodies are checked by the field
    rules, which name the field."""

    @app.before_request
    def refuse_nul_in_url() -> None:
        if "\x00" in request.path:
            abort(404)
        for name, value in request.args.items(multi=True):
            if "\x00" in name or "\x00" in value:
                abort(400, f"The query parameter {name!r} may not contain control characters.")


def same_origin(source: str | None, host_url: str) -> bool:
    """Whether an ``Origin`` or ``Referer`` value names this site (scheme, host and port)."""
    if not source:
        return False
    theirs, ours = urlsplit(source), urlsplit(host_url)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # rq-dashboard's pages use inline scripts and styles; ours use none.
        policy = DASHBOARD_SECURITY_POLICY if request.blueprint == "rq_dashboard" else CONTENT_SECURITY_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def register_template_helpers(app: Flask) -> None:
    from .templating import register_filters

    register_filters(app)
