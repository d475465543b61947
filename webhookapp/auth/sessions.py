"""Login sessions (docs/architecture.md, "Security"): which cookie names which user, and the API
that never uses one."""

from __future__ import annotations

import secrets
from typing import cast

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user

from webhookapp.infra.extensions import db, login_manager
from webhookapp.models import User


class NoSessionForTheApi(SecureCookieSessionInterface):
    """The token-authenticated API (``/public/``) neither reads nor sets the session cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/public/"):
            return self.session_class()  # empty; saved only if modified, which the API never does
        return super().open_session(app, request)


def load_user(session_id: str) -> User | None:
    """The user of a session or remember cookie, if its session token is still the user's: a
    logout replaces the token, which ends every session and remember cookie of the user."""
    user_id, _, token = session_id.partition(":")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not token or not secrets.compare_digest(token, user.session_token):
        return None
    return user


def signed_in_user() -> User:
    """The user of this request, for views behind the login wall (``infra/http_guards.py``):
    only a logged-in user reaches them, so Flask-Login's proxy stands for a :class:`User`."""
    return cast(User, current_user)  # the proxy is untyped: it stands for whatever user_loader gave


def init_app(app: Flask) -> None:
    """Install the session interface and the user loader."""
    app.session_interface = NoSessionForTheApi()
    login_manager.user_loader(load_user)
