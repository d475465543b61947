"""The API tokens page: create (the token is shown once, with its scopes and expiry), list, revoke."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from werkzeug import Response

from webhookapp.auth.sessions import signed_in_user
from webhookapp.core import scopes
from webhookapp.core.times import utcnow
from webhookapp.services import tokens as service
from webhookapp.settings.forms import TokenForm

blueprint = Blueprint("settings", __name__, url_prefix="/settings")


def _render_tokens(form: TokenForm, new_token: str | None = None, status: int = 200) -> Response:
    response = make_response(
        render_template(
            "settings/tokens.html",
            form=form,
            tokens=service.list_tokens(signed_in_user().account),
            new_token=new_token,
            scope_texts=scopes.SCOPES,
            every_scope=list(scopes.ALL_SCOPES),
            now=utcnow(),
        ),
        status,
    )
    if new_token:
        # The plain token appears on this one response only: keep it out of every cache.
        response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/tokens")
def tokens() -> Response:
    return _render_tokens(TokenForm())


@blueprint.post("/tokens")
def create_token() -> Response:
    form = TokenForm()
    if not form.validate():
        return _render_tokens(form, status=400)
    try:
        name = form.name.data or ""  # required: a validated form has one
        token, plain = service.create_token(
            signed_in_user().account,
            name,
            creation_key=form.creation_key.data,
            scope_names=form.scopes.data or [],
            expires_at=form.expiry(),
        )
    except service.AlreadyCreated as exc:
        flash(str(exc), "info")
        return redirect(url_for("settings.tokens"))
    except service.TokenError as exc:  # what the form cannot know: the clock moved past the expiry meanwhile
        form.form_errors.append(str(exc))
        return _render_tokens(form, status=400)
    flash(f"Token “{token.name}” created. Copy it now: it will not be shown again.", "success")
    # Rendered directly, not flashed: the session cookie is signed, not encrypted.
    return _render_tokens(TokenForm(formdata=None), new_token=plain)


@blueprint.route("/tokens/<int:token_id>/revoke", methods=["GET", "POST"])
def revoke_token(token_id: int) -> str | Response:
    """GET asks for confirmation (scripts using the token stop at once); POST revokes."""
    token = service.get_token(signed_in_user().account, token_id)
    if token is None:
        abort(404)
    if request.method == "GET":
        return render_template("settings/revoke.html", token=token)
    service.revoke_token(token)
    flash(f"Token “{token.name}” revoked.", "success")
    return redirect(url_for("settings.tokens"))
