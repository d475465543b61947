"""Webhook list, details, edit, enable/disable and delete. Another account's id is a 404."""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug import Response

from webhookapp.auth import reauth
from webhookapp.auth.sessions import signed_in_user
from webhookapp.core import catalog
from webhookapp.core.errors import ServiceError
from webhookapp.core.urls import safe_local_path
from webhookapp.engine import signing
from webhookapp.engine.direct import redelivery, validations
from webhookapp.models import Webhook
from webhookapp.services import audit, carried_events
from webhookapp.services import webhook_changes as service
from webhookapp.services import webhook_queries as queries
from webhookapp.webhooks import sendtest, tabs
from webhookapp.webhooks.forms import EditForm, apply_row_action, format_data
from webhookapp.webhooks.tab_loaders import TAB_LOADERS

blueprint = Blueprint("webhooks", __name__)
MAX_PAGE = 100_000
SECRET_REPLACED = (
    " Deliveries are now signed with the new JWT secret: a handler that verifies with the old one rejects them "
    "until it is updated."
)


def _page() -> int:
    """The ``page`` parameter, kept to a range no database overflows on."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def own_webhook(webhook_id: str) -> Webhook:
    """The signed-in account's webhook with this id; a 404 for any other id."""
    webhook = queries.get_webhook(signed_in_user().account, webhook_id)
    if webhook is None:
        abort(404)
    return webhook


@blueprint.get("/")
def root() -> Response:
    return redirect(url_for("webhooks.index"))


@blueprint.get("/webhooks")
def index() -> str:
    search = request.args.get("q", "").strip()[:100]
    status = request.args.get("status", "")
    type_key = request.args.get("type", "")
    products = queries.products_in_use(signed_in_user().account)
    product_id = request.args.get("product", "")
    product_id = product_id if any(product.id == product_id for product in products) else ""
    sort = request.args.get("sort", "")
    sort = sort if sort in queries.SORTS else ""
    page = queries.list_page(
        signed_in_user().account, _page(), current_app.config["WEBHOOKS_PER_PAGE"],
        search=search, status=status, type_key=type_key, product_id=product_id, sort=sort,
    )  # fmt: skip
    return render_template(
        "webhooks/list.html",
        page=page,
        rates=queries.success_rates([webhook.id for webhook in page.items]),
        search=search,
        status=status if status in queries.STATUSES else "",
        type_key=type_key if catalog.by_key(type_key) else "",
        product_id=product_id,
        products=products,
        sort=sort,
        sorts=queries.SORTS,
        statuses=queries.STATUSES,
        filtered=bool(search or status or type_key or product_id),
    )


@blueprint.get("/webhooks/<webhook_id>")
def details(webhook_id: str) -> Response:
    """The details page: properties, then one tab (:mod:`.tabs`) with what it needs loaded."""
    webhook = own_webhook(webhook_id)
    tab = tabs.chosen_tab(webhook, request.args.get("tab"))
    reveal = request.args.get("reveal") if tab == "http" and request.args.get("reveal") in ("secret", "next") else None
    if reveal and not reauth.recently_confirmed():
        return reauth.ask_for_password()  # then back here, with the secret shown
    loader = TAB_LOADERS.get(tab)
    context = loader(webhook) if loader else {}
    response = make_response(
        render_template(
            "webhooks/details.html", webhook=webhook, tab=tab, tabs=tabs.tabs_of(webhook), reveal=reveal, **context
        )
    )
    if reveal:
        response.headers["Cache-Control"] = "no-store"
        audit.note_webhook("webhook.secret_revealed", webhook, _revealed(reveal))
    return response


def _revealed(which: str) -> dict[str, dict[str, bool]]:
    """The entry's changes for a reveal: which secret was shown (never its value)."""
    return {"jwt_secret_next" if which == "next" else "jwt_secret": {"revealed": True}}


@blueprint.get("/webhooks/<webhook_id>/attempts/<int:attempt_id>")
def attempt(webhook_id: str, attempt_id: int) -> str:
    webhook = own_webhook(webhook_id)
    record = queries.get_attempt(webhook, attempt_id)
    if record is None:
        abort(404)
    original = queries.get_attempt(webhook, record.redelivery_of) if record.redelivery_of else None
    token = signing.decode_logged(record.request_headers)
    carried = carried_events.carried_events(webhook, record)
    return render_template(
        "webhooks/attempt.html", webhook=webhook, attempt=record, original=original, token=token, carried=carried
    )


@blueprint.post("/webhooks/<webhook_id>/attempts/<int:attempt_id>/redeliver")
def redeliver(webhook_id: str, attempt_id: int) -> Response:
    """Redeliver: send the attempt's request again now and show the new attempt; nothing else
    about the webhook changes (docs/architecture.md, "Redeliver")."""
    webhook = own_webhook(webhook_id)
    original = queries.get_attempt(webhook, attempt_id)
    if original is None:
        abort(404)
    try:
        attempt = redelivery.redeliver(webhook, original, audit.request_actor())
    except ServiceError as exc:
        if exc.status == 404:  # deleted while the request was out
            abort(404)
        flash(" ".join(exc.messages), "error")
        return redirect(url_for("webhooks.attempt", webhook_id=webhook_id, attempt_id=attempt_id))
    if attempt.success:
        flash(f"Redelivered: the handler answered HTTP {attempt.response_status}.", "success")
    else:
        flash(f"The redelivery failed: {attempt.error}", "error")
    return redirect(url_for("webhooks.attempt", webhook_id=webhook_id, attempt_id=attempt.id))


@blueprint.post("/webhooks/<webhook_id>/trigger")
def trigger(webhook_id: str) -> Response:
    """Trigger Now: event webhooks get a trigger due now; validation webhooks a sample request."""
    webhook = own_webhook(webhook_id)
    if webhook.catalog_entry.kind == "validation":
        try:
            answer = validations.send_sample(webhook, audit.request_actor())
        except ServiceError as exc:
            flash(" ".join(exc.messages), "error")
            return redirect(url_for("webhooks.details", webhook_id=webhook.id))
        if answer.answered:
            flash(f"The handler answered the sample request with HTTP {answer.status}.", "success")
        else:
            flash(f"The sample request failed: {answer.error}", "error")
        if answer.attempt_id:
            return redirect(url_for("webhooks.attempt", webhook_id=webhook.id, attempt_id=answer.attempt_id))
        return redirect(url_for("webhooks.details", webhook_id=webhook.id))
    done = f"Triggered “{webhook.label}”: the handler is called now."
    _flash_outcome(lambda: service.trigger_now(webhook), "active", done)
    return redirect(url_for("webhooks.details", webhook_id=webhook.id))


@blueprint.post("/webhooks/<webhook_id>/retry")
def retry(webhook_id: str) -> Response:
    """Retry now: the pending retry of a Failing or Out-of-order webhook, at once, counting no event."""
    webhook = own_webhook(webhook_id)
    _flash_outcome(lambda: service.retry_now(webhook), "status", f"Retrying “{webhook.label}” now.")
    return redirect(_back_to(webhook))


@blueprint.get("/webhooks/<webhook_id>/secret")
@reauth.password_confirmed
def secret(webhook_id: str) -> Response:
    """The JWT secret (``?which=next``: the next one) as JSON, for the reveal and copy buttons;
    never cached."""
    webhook = own_webhook(webhook_id)
    which = "next" if request.args.get("which") == "next" else "secret"
    value = webhook.jwt_secret_next if which == "next" else webhook.jwt_secret
    if value is None:
        abort(404)
    audit.note_webhook("webhook.secret_revealed", webhook, _revealed(which))
    response = jsonify(jwt_secret=value)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/webhooks/<webhook_id>/edit", methods=["GET", "POST"])
def edit(webhook_id: str) -> str | Response | tuple[str, int]:
    webhook = own_webhook(webhook_id)
    if request.method == "GET":
        form = EditForm(
            formdata=None,
            label=webhook.label,
            description=webhook.description,
            active=webhook.active,
            external_url=webhook.external_url,
            http_method=webhook.http_method,
            signature_format=webhook.signature_format,
            headers=[{"name": name, "value": value} for name, value in webhook.headers.items()] or [{}],
            custom_data=format_data(webhook.data),
            tls_client_cert=webhook.tls_client_cert or "",
            tls_ca_bundle=webhook.tls_ca_bundle or "",
        )
        return render_template("webhooks/edit.html", webhook=webhook, form=form)
    form = EditForm()
    form.kept_key = webhook.tls_client_key
    action = request.form.get("action", "save")
    if action == "generate_secret":
        form.jwt_secret.data = service.generate_secret(form.chosen_format())
        kind = "Standard Webhooks" if form.chosen_format() == "standard" else "JWT"
        flash(f"A new {kind} secret was generated. To apply it, tick “Replace the current secret” and save; "
              "until then the old one stays in use.", "info")  # fmt: skip
        return render_template("webhooks/edit.html", webhook=webhook, form=form)
    if apply_row_action(form, action):
        return render_template("webhooks/edit.html", webhook=webhook, form=form)
    if action == "send_test":
        result = sendtest.from_edit(webhook, form)
        page = render_template("webhooks/edit.html", webhook=webhook, form=form, test_result=result)
        return page, 200 if result else 400
    valid = form.validate()
    if form.secret_change_confirmed() and valid:
        try:
            service.update_webhook(webhook, form.to_fields())
        except service.WebhookValidationError as exc:
            form.add_service_errors(exc.errors)
        else:
            flash(f"Webhook “{webhook.label}” saved." + (SECRET_REPLACED if form.change_secret.data else ""), "success")
            return redirect(url_for("webhooks.details", webhook_id=webhook.id))
    return render_template("webhooks/edit.html", webhook=webhook, form=form), 400


@blueprint.post("/webhooks/<webhook_id>/enable")
def enable(webhook_id: str) -> Response:
    webhook = service.set_enabled(own_webhook(webhook_id), True)
    flash(f"Webhook “{webhook.label}” enabled.", "success")
    return redirect(_back_to(webhook))


@blueprint.post("/webhooks/<webhook_id>/disable")
def disable(webhook_id: str) -> Response:
    webhook = service.set_enabled(own_webhook(webhook_id), False)
    flash(f"Webhook “{webhook.label}” disabled.", "success")
    return redirect(_back_to(webhook))


@blueprint.route("/webhooks/<webhook_id>/delete", methods=["GET", "POST"])
def delete(webhook_id: str) -> str | Response:
    webhook = own_webhook(webhook_id)
    if request.method == "GET":
        return render_template("webhooks/delete.html", webhook=webhook)
    label = webhook.label
    service.delete_webhook(webhook)
    flash(f"Webhook “{label}” deleted.", "success")
    return redirect(url_for("webhooks.index"))


def _flash_outcome(action: Callable[[], object], field: str, done: str) -> None:
    """Run a service action; flash why it was refused (the messages about ``field``) or ``done``."""
    try:
        action()
    except service.WebhookValidationError as exc:
        flash(" ".join(exc.errors[field]), "error")
    else:
        flash(done, "success")


def _back_to(webhook: Webhook) -> str:
    """Return to the list (keeping its filters) when the action came from there, else the details."""
    return safe_local_path(request.form.get("next"), url_for("webhooks.details", webhook_id=webhook.id))
