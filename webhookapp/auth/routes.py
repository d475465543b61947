"""Login and logout pages."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug import Response

from ..services import accounts
from ..urls import safe_local_path
from .forms import LoginForm

blueprint = Blueprint("auth", __name__)


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=form.remember.data)
            flash(f"Welcome, {user.name or user.email}.", "success")
            return redirect(safe_local_path(request.args.get("next"), url_for("webhooks.index")))
        form.password.errors.append("Invalid email or password.")
    return render_template("auth/login.html", form=form)


@blueprint.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    accounts.end_sessions(current_user)
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))
