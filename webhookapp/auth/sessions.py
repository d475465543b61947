"""Login sessions (docs/security.md, "Sessions"): which cookie names which user, how long a
session lasts, what the remember cookie may do, and the API that never uses one.

What the session and the remember cookie keep (``User.get_id`` and what :func:`sign_in` adds):
``<user id>:<session token>:<signed in at>:<2fa>``. The session token ends every session and
remember cookie of the user (logout, a new password); the time and the two-factor flag let the
remember cookie be refused once ``REMEMBER_COOKIE_DURATION`` has passed or when the user's
two-factor state is no longer what it was at login. The session itself keeps when it started and
when the person last did something (``auth_started``, ``auth_seen``), and when the password was
last typed (``reauth_at``, :mod:`webhookapp.auth.reauth`).
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any, cast

from flask import Flask, Request, current_app, flash, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import AnonymousUserMixin, current_user, login_user, user_loaded_from_cookie
from werkzeug import Response

from webhookapp.infra.extensions import db, login_manager
from webhookapp.models import User
from webhookapp.services import two_factor

STARTED, SEEN, REAUTH = "auth_started", "auth_seen", "reauth_at"
# Flask-Login's own keys, and ours, that make a session signed in.
SIGNED_IN_KEYS = ("_user_id", "_fresh", "_id", STARTED, SEEN, REAUTH)
# Requests made by a page's script, not by a person: they never keep a session alive.
NOT_ACTIVITY_BLUEPRINTS = {"live"}
# Who need not have a session: the token-authenticated API, the operations endpoints, files.
SESSIONLESS_BLUEPRINTS = {"api", "ops"}
# Where a user who must enrol in two-factor login may go before enrolling.
ENROLMENT_ENDPOINTS = {"auth.two_factor_enrol", "auth.logout", "auth.login", "static"}


class NoSessionForTheApi(SecureCookieSessionInterface):
    """The token-authenticated API (``/public/``) neither reads nor sets the session cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/public/"):
            return self.session_class()  # empty; saved only if modified, which the API never does
        return super().open_session(app, request)


def load_user(session_id: str) -> User | None:
    """The user of a session or remember cookie, if its session token is still the user's.

    A remember cookie (a request whose session did not start with a login) is honoured only
    within ``REMEMBER_COOKIE_DURATION`` of the login that made it, and only while the user's
    two-factor state is the one that login had.
    """
    user_id, token, signed_in_at, with_two_factor = [*session_id.split(":"), "", "", ""][:4]
    user = user_of(f"{user_id}:{token}")
    if user is None:
        return None
    if STARTED in session:
        return user
    duration = current_app.config["REMEMBER_COOKIE_DURATION"]
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if not signed_in_at.isdigit() or time.time() - int(signed_in_at) > seconds:
        return None
    if with_two_factor != ("1" if user.two_factor_enabled else "0"):
        return None
    return user


def user_of(user_id_and_token: str) -> User | None:
    """The user a ``get_id()`` value names, while its session token is still the user's."""
    user_id, _, token = user_id_and_token.partition(":")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not token or not secrets.compare_digest(token, user.session_token):
        return None
    return user


def sign_in(user: User, *, remember: bool, two_factor: bool) -> None:
    """Start a session for ``user`` after the password (and the code, when ``two_factor``)."""
    login_user(user, remember=remember)
    session["_user_id"] = f"{user.get_id()}:{int(time.time())}:{'1' if two_factor else '0'}"
    now = time.time()
    session[STARTED] = session[SEEN] = session[REAUTH] = now


def renew(user: User) -> None:
    """Keep this session signed in after the user's session token or two-factor state changed
    (a new password ends every other session); a remember cookie of this browser is made again."""
    with_two_factor = "1" if user.two_factor_enabled else "0"
    session["_user_id"] = f"{user.get_id()}:{int(time.time())}:{with_two_factor}"
    if request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")):
        session["_remember"] = "set"


def signed_in_user() -> User:
    """The user of this request, for views behind the login wall (``infra/http_guards.py``):
    only a logged-in user reaches them, so Flask-Login's proxy stands for a :class:`User`."""
    return cast(User, current_user)  # the proxy is untyped: it stands for whatever user_loader gave


def _ended(now: float) -> str | None:
    """Why the session of this request has ended, or None while it lasts."""
    started, seen = session.get(STARTED), session.get(SEEN)
    if not isinstance(started, (int, float)) or not isinstance(seen, (int, float)):
        return "Please log in to continue."
    config = current_app.config
    if now - started > config["SESSION_MAX_AGE"]:
        return f"Your session ended: a session lasts at most {_duration(config['SESSION_MAX_AGE'])}. Log in again."
    if now - seen > config["SESSION_IDLE_TIMEOUT"]:
        return (f"Your session ended after {_duration(config['SESSION_IDLE_TIMEOUT'])} without activity. "
                "Log in again.")  # fmt: skip
    return None


def _duration(seconds: float) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = max(round(seconds), 1)
    return f"{count} second{'s' if count != 1 else ''}"


def _session_over(message: str) -> Response:
    """The answer to a request whose session ended: the login page with the message, or, for a
    page's script, a JSON 401 it can show (``static/js/live.js``)."""
    login_url = url_for("auth.login")
    if request.blueprint in NOT_ACTIVITY_BLUEPRINTS or request.accept_mimetypes.best == "application/json":
        response = jsonify(error_code="SESSION_ENDED", errors={"session": [message]}, message=message,
                           login_url=login_url)  # fmt: skip
        response.status_code = 401
        return response
    flash(message, "info")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))


def enforce_session_rules() -> Response | None:
    """End a session idle or too old (a remember cookie may start a new one at once), count a
    person's request as activity, and send a user who must enrol in two-factor login to do so."""
    if request.blueprint in SESSIONLESS_BLUEPRINTS or request.endpoint == "static":
        return None
    if request.path.startswith("/public/"):
        return None
    # The user of this request is looked up for this request (a test's app context outlives one).
    g.pop("_login_user", None)
    now = time.time()
    if "_user_id" in session:
        message = _ended(now) if STARTED in session else None
        if message or STARTED not in session:
            for key in SIGNED_IN_KEYS:
                session.pop(key, None)
            g.pop("_login_user", None)  # looked up again: a remember cookie may start a new session
            if not current_user.is_authenticated and message:
                if request.endpoint == "auth.login":
                    flash(message, "info")
                    return None
                return _session_over(message)
        elif request.blueprint not in NOT_ACTIVITY_BLUEPRINTS:
            session[SEEN] = now
    # A poll only refreshes a page already shown: the next page the person opens is the one sent
    # to enrol (and a poll costs no extra query).
    if (request.blueprint not in NOT_ACTIVITY_BLUEPRINTS and request.endpoint not in ENROLMENT_ENDPOINTS
            and current_user.is_authenticated and two_factor.must_enrol(signed_in_user())):  # fmt: skip
        flash("Your account requires two-factor login: set it up to go on.", "info")
        return redirect(url_for("auth.two_factor_enrol"))
    return None


def nobody_for_now() -> None:
    """Answer the rest of this request as to a visitor not signed in, without looking the user up:
    the database that would name them cannot be reached. The 503 page's header asks for the user,
    and a lookup there would fail again and turn the page into a 500. The session is kept."""
    g._login_user = AnonymousUserMixin()  # where Flask-Login keeps the request's user


def _started_by_remember_cookie(_app: Any, user: User, **_extra: Any) -> None:
    """A remember cookie started a session: it lasts as a session does, without a typed password."""
    session[STARTED] = session[SEEN] = time.time()


def init_app(app: Flask) -> None:
    """Install the session interface, the user loader and the session rules (before the login
    wall, which :mod:`webhookapp.infra.http_guards` adds later)."""
    app.session_interface = NoSessionForTheApi()
    login_manager.user_loader(load_user)
    user_loaded_from_cookie.connect(_started_by_remember_cookie, app, weak=False)
    app.before_request(enforce_session_rules)
