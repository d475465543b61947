"""Asking for the password again (docs/security.md, "Asking for the password again").

Revealing a webhook's secret, switching to or generating the next secret, and removing
two-factor login need the password typed within ``REAUTH_WINDOW`` seconds: whoever finds a
signed-in browser left open cannot walk away with a signing key, or with the account's second
factor. A login with the password counts; a session a remember cookie started does not. API tokens
are not affected: a token is its own credential.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app, jsonify, redirect, request, session, url_for
from werkzeug import Response

from webhookapp.auth.sessions import REAUTH

P = ParamSpec("P")
R = TypeVar("R")


def recently_confirmed() -> bool:
    """Whether the password of this session was typed within ``REAUTH_WINDOW``."""
    at = session.get(REAUTH)
    return isinstance(at, (int, float)) and time.time() - at <= current_app.config["REAUTH_WINDOW"]


def confirmed_now() -> None:
    """The person just typed the password (the confirm page, a login, a new password)."""
    session[REAUTH] = time.time()


def confirm_url(back_to: str) -> str:
    """The confirm-password page, returning to ``back_to`` (a local path) afterwards."""
    return url_for("auth.confirm_password", next=back_to)


def ask_for_password() -> Response:
    """Send the person to confirm the password, then back: a GET comes back to its own URL (the
    secret is shown); a form comes back to the page it was sent from, where the person presses the
    button again (a form is never sent on by itself: a crafted link to the confirm page must not
    act for the person); a script asking for JSON gets a 401 naming the page to open."""
    if request.accept_mimetypes.best == "application/json":
        page = request.referrer if request.referrer else request.full_path.rstrip("?")
        response = jsonify(error_code="REAUTH_REQUIRED", errors={"password": ["Confirm your password to go on."]},
                           confirm_url=confirm_url(_local(page)))  # fmt: skip
        response.status_code = 401
        return response
    if request.method == "GET":
        return redirect(confirm_url(request.full_path.rstrip("?")))
    return redirect(confirm_url(_local(request.referrer or "/")))


def _local(url: str) -> str:
    """The path and query of a URL of this site (a referrer), for the ``next`` parameter."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def password_confirmed(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Decorate a view that needs the password confirmed within ``REAUTH_WINDOW``."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if not recently_confirmed():
            return ask_for_password()
        return view(*args, **kwargs)

    return wrapped
