"""Login and logout pages."""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_limiter import RequestLimit
from flask_login import login_required, login_user, logout_user
from werkzeug import Response

from webhookapp.auth.forms import LoginForm
from webhookapp.auth.sessions import signed_in_user
from webhookapp.core.urls import safe_local_path
from webhookapp.infra import throttling
from webhookapp.services import accounts, audit

blueprint = Blueprint("auth", __name__)


def too_many_failures(limit: RequestLimit) -> Response:
    """The login page, refused for a while: too many failed logins for this email or address."""
    seconds = throttling.retry_after(limit)
    form = LoginForm()
    minutes = max(round(seconds / 60), 1)
    form.password.errors = [
        f"Too many failed logins for this account or from your address. Try again in {minutes} minute"
        f"{'s' if minutes > 1 else ''}."
    ]
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(seconds)
    return response


def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        # Both required: a validated form has them (the fields declare str | None).
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user, remember=form.remember.data)
            audit.note("user.logged_in", **audit.about_user(user))
            flash(f"Welcome, {user.name or user.email}.", "success")
            return redirect(safe_local_path(request.args.get("next"), url_for("webhooks.index")))
        throttling.login_failed()
        audit.note_failed_login(form.email.data or "")
        form.password.errors = [*form.password.errors, "Invalid email or password."]
    return render_template("auth/login.html", form=form)


blueprint.add_url_rule(
    "/login", view_func=throttling.throttled_login(login, too_many_failures), methods=["GET", "POST"]
)


@blueprint.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    audit.record("user.logged_out", **audit.about_user(signed_in_user()))  # committed with the sessions' end
    accounts.end_sessions(signed_in_user())
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))
