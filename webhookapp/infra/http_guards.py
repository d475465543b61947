"""What every request passes (docs/architecture.md, "Security"): the login wall, the NUL guard on
URLs, and the security headers of every answer."""

from __future__ import annotations

from urllib.parse import urlsplit

import werkzeug
from flask import Flask, Response, abort, request
from flask_login import current_user

from webhookapp.infra.extensions import login_manager

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# Reachable without a login session: the login page and its two-factor step, static files, the token-authenticated API,
# and the operations endpoints (health checks; metrics, which check their own access).
PUBLIC_ENDPOINTS = {"auth.login", "auth.login_code", "static"}
PUBLIC_BLUEPRINTS = {"api", "ops"}


def register(app: Flask, policies: dict[str, str]) -> None:
    """The login wall, the URL guard and the headers; ``policies`` maps a blueprint to a content
    security policy of its own (every other page has :data:`CONTENT_SECURITY_POLICY`)."""
    register_login_wall(app)
    register_input_guard(app)
    register_security_headers(app, policies)


def register_login_wall(app: Flask) -> None:
    """Every page needs a login unless its endpoint is listed as public (deny by default)."""

    @app.before_request
    def require_login() -> werkzeug.Response | None:
        if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in PUBLIC_BLUEPRINTS:
            return None
        if request.path.startswith("/public/"):
            return None  # unknown API paths get a JSON 404, not the login page
        if current_user.is_authenticated:
            return None
        return login_manager.unauthorized()


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


def register_security_headers(app: Flask, policies: dict[str, str]) -> None:
    """nosniff, no framing, same-origin referrers, a strict CSP, and HSTS behind HTTPS."""

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        policy = policies.get(request.blueprint or "", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Content-Security-Policy", policy)
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def same_origin(source: str | None, host_url: str) -> bool:
    """Whether an ``Origin`` or ``Referer`` value names this site (scheme, host and port)."""
    if not source:
        return False
    theirs, ours = urlsplit(source), urlsplit(host_url)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
