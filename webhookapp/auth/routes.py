"""Login (password, then a two-factor code when the user has it), logout, and confirming the
password again (docs/security.md, "Sessions", "Two-factor login")."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_limiter import RequestLimit
from flask_login import login_required, logout_user
from flask_wtf import FlaskForm
from werkzeug import Response

from webhookapp.auth import reauth
from webhookapp.auth.forms import CodeForm, ConfirmPasswordForm, LoginForm
from webhookapp.auth.sessions import sign_in, signed_in_user, user_of
from webhookapp.core.urls import safe_local_path
from webhookapp.infra import throttling
from webhookapp.models import User
from webhookapp.services import accounts, audit, two_factor

blueprint = Blueprint("auth", __name__)
PENDING = "login_pending"  # between the password and the code: who, remember me, when, where to


def refused(
    template: str, form_class: type[FlaskForm], field: str, what: str = "attempts"
) -> Callable[[RequestLimit], Response]:
    """The answer of a throttled page: the form, refused for a while, saying until when."""

    def answer(limit: RequestLimit) -> Response:
        seconds = throttling.retry_after(limit)
        form = form_class()
        minutes = max(round(seconds / 60), 1)
        getattr(form, field).errors = [
            f"Too many failed {what} for this account or from your address. Try again in {minutes} minute"
            f"{'s' if minutes > 1 else ''}."
        ]
        response = make_response(render_template(template, form=form), 429)
        response.headers["Retry-After"] = str(seconds)
        return response

    return answer


def _next_page() -> str:
    return safe_local_path(request.args.get("next"), url_for("webhooks.index"))


def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        # Both required: a validated form has them (the fields declare str | None).
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None and user.two_factor_enabled:
            session[PENDING] = {"user": user.get_id(), "remember": bool(form.remember.data), "at": time.time(),
                                "next": _next_page()}  # fmt: skip
            return redirect(url_for("auth.login_code"))
        if user is not None:
            sign_in(user, remember=bool(form.remember.data), two_factor=False)
            audit.note("user.logged_in", **audit.about_user(user))
            flash(f"Welcome, {user.name or user.email}.", "success")
            return redirect(_next_page())
        throttling.login_failed()
        audit.note_failed_login(form.email.data or "")
        form.password.errors = [*form.password.errors, "Invalid email or password."]
    return render_template("auth/login.html", form=form)


def _pending_user() -> User | None:
    """The user who typed the right password and owes the code, within TWO_FACTOR_LOGIN_WINDOW."""
    pending = session.get(PENDING)
    if (
        not isinstance(pending, dict)
        or time.time() - float(pending.get("at", 0)) > current_app.config["TWO_FACTOR_LOGIN_WINDOW"]
    ):
        return None
    return user_of(str(pending.get("user", "")))


def _pending_email() -> str:
    user = _pending_user()
    return user.email if user else ""


def login_code() -> str | Response:
    """The second step: the code (or a recovery code) of the user who typed the password."""
    user = _pending_user()
    if user is None:
        session.pop(PENDING, None)
        flash("Log in again: the code was not entered in time.", "info")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        if two_factor.check_code(user, form.code.data or ""):
            pending = session.pop(PENDING)
            sign_in(user, remember=bool(pending.get("remember")), two_factor=True)
            audit.note("user.logged_in", **audit.about_user(user), changes={"two_factor": {"after": True}})
            flash(f"Welcome, {user.name or user.email}.", "success")
            return redirect(safe_local_path(pending.get("next"), url_for("webhooks.index")))
        throttling.login_failed()
        audit.note_failed_login(user.email)  # the password was right, the second factor was not
        form.code.errors = [*form.code.errors, "That code is not valid, or was already used. Try the next one."]
    return render_template("auth/code.html", form=form)


def _current_email() -> str:
    return signed_in_user().email


def confirm_password() -> str | Response:
    """Type the password again, then go back to what asked for it (:mod:`webhookapp.auth.reauth`)."""
    form = ConfirmPasswordForm()
    if form.validate_on_submit():
        if signed_in_user().check_password(form.password.data or ""):
            reauth.confirmed_now()
            flash("Password confirmed.", "success")
            return redirect(_next_page())
        throttling.login_failed()
        form.password.errors = [*form.password.errors, "That is not your password."]
    return render_template("auth/confirm_password.html", form=form)


blueprint.add_url_rule(
    "/login",
    view_func=throttling.throttled_login(login, refused("auth/login.html", LoginForm, "password", "logins")),
    methods=["GET", "POST"],
)
blueprint.add_url_rule(
    "/login/code",
    view_func=throttling.throttled_login(login_code, refused("auth/code.html", CodeForm, "code"), _pending_email),
    methods=["GET", "POST"],
)
blueprint.add_url_rule(
    "/confirm-password",
    view_func=throttling.throttled_login(
        confirm_password, refused("auth/confirm_password.html", ConfirmPasswordForm, "password"), _current_email
    ),
    methods=["GET", "POST"],
)


@blueprint.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    audit.record("user.logged_out", **audit.about_user(signed_in_user()))  # committed with the sessions' end
    accounts.end_sessions(signed_in_user())
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))
