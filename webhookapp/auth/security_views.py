"""The Security settings page (docs/security.md, "Passwords", "Two-factor login"): change the
password, set up or remove two-factor login, and (admins) require it for the whole account.

These views join the auth blueprint: its throttling counts a wrong current password or a wrong
code like a failed login.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, session, url_for
from werkzeug import Response

from webhookapp.auth import reauth
from webhookapp.auth.forms import ChangePasswordForm, EnrolForm, RemoveTwoFactorForm, RequireTwoFactorForm
from webhookapp.auth.routes import blueprint, refused
from webhookapp.auth.sessions import renew, signed_in_user
from webhookapp.infra import throttling
from webhookapp.services import accounts, two_factor

PENDING_SEED = "totp_pending"  # the enrolment's seed, encrypted for this user, until confirmed


def _email() -> str:
    return signed_in_user().email


@blueprint.get("/settings/security")
def security() -> str:
    user = signed_in_user()
    return render_template(
        "auth/security.html",
        user=user,
        codes_left=two_factor.recovery_codes_left(user) if user.two_factor_enabled else 0,
        required_form=RequireTwoFactorForm(required=user.account.require_two_factor),
    )


def change_password() -> str | Response:
    """The current password, then the new one twice; every other session ends, this one stays."""
    form = ChangePasswordForm()
    user = signed_in_user()
    if form.validate_on_submit():
        if not user.check_password(form.current_password.data or ""):
            throttling.login_failed()
            form.current_password.errors = [*form.current_password.errors, "That is not your current password."]
        elif form.check_policy(user.email, user.name):
            accounts.change_password(user, form.new_password.data or "")
            renew(user)
            reauth.confirmed_now()
            flash("Your password was changed. Every other session and remembered browser was logged out.", "success")
            return redirect(url_for("auth.security"))
    status = 400 if form.errors else 200
    return make_response(render_template("auth/change_password.html", form=form), status)


blueprint.add_url_rule(
    "/settings/security/password",
    view_func=throttling.throttled_login(
        change_password, refused("auth/change_password.html", ChangePasswordForm, "current_password"), _email
    ),
    methods=["GET", "POST"],
)


@blueprint.route("/settings/security/two-factor", methods=["GET", "POST"])
def two_factor_enrol() -> str | Response:
    """Scan the QR code (or type the key), confirm with the app's first code, keep the recovery codes."""
    user = signed_in_user()
    if user.two_factor_enabled:
        flash("Two-factor login is already on.", "info")
        return redirect(url_for("auth.security"))
    seed = two_factor.pending_seed(user, str(session.get(PENDING_SEED, "")))
    if seed is None:
        session[PENDING_SEED] = two_factor.new_pending_seed(user)
        seed = two_factor.pending_seed(user, session[PENDING_SEED]) or ""
    form = EnrolForm()
    if form.validate_on_submit():
        codes = two_factor.confirm_enrolment(user, seed, form.code.data or "")
        if codes is not None:
            session.pop(PENDING_SEED, None)
            renew(user)  # this browser's remember cookie now stands for a login with two factors
            flash("Two-factor login is on. From now on you log in with your password and a code.", "success")
            response = make_response(render_template("auth/recovery_codes.html", codes=codes))
            response.headers["Cache-Control"] = "no-store"  # shown once: keep them out of every cache
            return response
        form.code.errors = [*form.code.errors, "That code is not the app's current code. Check the app and try again."]
    uri = two_factor.provisioning_uri(user, seed)
    response = make_response(
        render_template("auth/enrol.html", form=form, uri=uri, seed=seed, qr=two_factor.qr_code_data_uri(uri)),
        400 if form.errors else 200,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@reauth.password_confirmed
def two_factor_remove() -> str | Response:
    """Turn two-factor login off: the password typed within REAUTH_WINDOW, and a current code."""
    user = signed_in_user()
    if not user.two_factor_enabled:
        return redirect(url_for("auth.security"))
    form = RemoveTwoFactorForm()
    if form.validate_on_submit():
        if two_factor.check_code(user, form.code.data or ""):
            two_factor.remove(user)
            renew(user)
            flash("Two-factor login is off.", "success")
            return redirect(url_for("auth.security"))
        throttling.login_failed()
        form.code.errors = [*form.code.errors, "That code is not valid, or was already used."]
    return make_response(render_template("auth/remove_two_factor.html", form=form), 400 if form.errors else 200)


blueprint.add_url_rule(
    "/settings/security/two-factor/remove",
    view_func=throttling.throttled_login(
        two_factor_remove, refused("auth/remove_two_factor.html", RemoveTwoFactorForm, "code"), _email
    ),
    methods=["GET", "POST"],
)


@blueprint.post("/settings/security/two-factor/required")
def two_factor_required() -> Response:
    """An admin requires (or stops requiring) two-factor login for every user of the account."""
    user = signed_in_user()
    if not user.is_admin:
        abort(403)
    form = RequireTwoFactorForm()
    if not form.validate():
        abort(400)
    two_factor.set_required(user, bool(form.required.data))
    flash("Two-factor login is now required for every user of this account." if form.required.data
          else "Two-factor login is now optional for the users of this account.", "success")  # fmt: skip
    return redirect(url_for("auth.security"))
