"""The "Create Webhook" wizard: General, Product, Type, HTTP Settings, Additional data.

One server-rendered page per step with Back / Next / Cancel.  What was typed is kept in a
server-side draft (``services.drafts``), so a reload or Back keeps it and nothing rides in the
cookie.  A step can only be opened once the steps before it are complete.  The last step's
Create hands the whole draft to ``services.webhooks.create_webhook``, which checks every rule
again; an error found there sends the person back to the step that holds the field.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug import Response

from webhookapp.core import rules
from webhookapp.engine.types import AttemptResult
from webhookapp.models import WizardDraft, tenancy
from webhookapp.services import drafts
from webhookapp.services import webhook_changes as service
from webhookapp.webhooks import sendtest
from webhookapp.webhooks.forms import DataForm, GeneralForm, HttpSettingsForm, ProductForm, TypeForm, apply_row_action

blueprint = Blueprint("wizard", __name__, url_prefix="/webhooks/new")
StepForm = GeneralForm | ProductForm | TypeForm | HttpSettingsForm | DataForm

STEPS = ("general", "product", "type", "http", "data")
TITLES = {
    "general": "General",
    "product": "Product",
    "type": "Type",
    "http": "HTTP Settings",
    "data": "Additional data",
}
FIELD_STEPS = {
    "label": "general",
    "description": "general",
    "active": "general",
    "product_id": "product",
    "type_key": "type",
    "external_url": "http",
    "jwt_secret": "http",
    "http_method": "http",
    "signature_format": "http",
    "headers": "http",
    "tls_client_cert": "http",
    "tls_client_key": "http",
    "tls_ca_bundle": "http",
    "data": "data",
}


def _make_form(step: str, draft: WizardDraft, formdata: Any = None) -> StepForm:
    """The step's form, filled from the request when posted, else from the draft."""
    values = dict(draft.data)
    account = current_user.account
    if step == "general":
        return GeneralForm(formdata=formdata, data=values)
    if step == "product":
        return ProductForm(formdata=formdata, data=values, products=tenancy.usable_products(account))
    if step == "type":
        product = tenancy.usable_product(account, values.get("product_id"))
        return TypeForm(
            formdata=formdata, data=values, check_type=lambda key: service.check_type(account, product, key)
        )
    if step == "http":
        values["headers"] = [{"name": n, "value": v} for n, v in values.get("headers", [])] or [{}]
        form = HttpSettingsForm(formdata=formdata, data=values)
        form.kept_key = values.get("tls_client_key")
        return form
    return DataForm(formdata=formdata, data={"custom_data": values.get("data_text", "")})


def _typed_values(form: StepForm) -> dict[str, Any]:
    """What the person typed on the step of ``form``, raw, as the draft keeps it."""
    if isinstance(form, GeneralForm):
        return {"label": form.label.data or "", "description": form.description.data or "", "active": form.active.data}
    if isinstance(form, ProductForm):
        return {"product_id": form.product_id.data}
    if isinstance(form, TypeForm):
        return {"type_key": form.type_key.data}
    if isinstance(form, HttpSettingsForm):
        return {
            "external_url": form.external_url.data or "",
            "jwt_secret": form.jwt_secret.data or "",
            "http_method": form.http_method.data or "",
            "signature_format": form.signature_format.data or "jwt",
            "headers": form.header_pairs(),
            # The draft keeps the key encrypted; an empty field keeps the one typed before.
            **dict(zip(("tls_client_cert", "tls_client_key", "tls_ca_bundle"), form.client_tls_values(), strict=True)),
        }
    return {"data_text": form.custom_data.data or ""}


@blueprint.get("")
def start() -> Response:
    """Open a fresh draft with a strong secret and POST pre-selected."""
    draft = drafts.start_draft(current_user, {"jwt_secret": service.generate_secret(), "http_method": "POST"})
    return redirect(url_for("wizard.step", draft_id=draft.id, step=STEPS[0]))


@blueprint.route("/<draft_id>/<step>", methods=["GET", "POST"])
def step(draft_id: str, step: str) -> str | Response | tuple[str, int]:
    """One step of the wizard; a step whose predecessors are incomplete sends back to the first gap."""
    draft = drafts.get_draft(current_user, draft_id)
    if draft is None or step not in STEPS:
        abort(404)
    missing = next((name for name in STEPS[: STEPS.index(step)] if name not in draft.completed), None)
    if missing:
        return redirect(url_for("wizard.step", draft_id=draft.id, step=missing))
    if request.method == "GET":
        return _show(draft, step)
    return _submit(draft, step, request.form.get("action", "next"))


def _show(draft: WizardDraft, step: str) -> str:
    """The step as the draft holds it; ``?check=1`` (sent after a failed Create) shows its errors."""
    form = _make_form(step, draft)
    if request.args.get("check"):
        form.validate()
    return _render(draft, step, form)


def _submit(draft: WizardDraft, step: str, action: str) -> str | Response | tuple[str, int]:
    """Cancel, Back, the HTTP step's own buttons, or Next (Create on the last step)."""
    if action == "cancel":
        drafts.discard_draft(draft)
        flash("Webhook creation cancelled.", "info")
        return redirect(url_for("webhooks.index"))
    position = STEPS.index(step)
    form = _make_form(step, draft, formdata=request.form)
    if isinstance(form, HttpSettingsForm):
        _fit_secret(draft, form)
    typed = _typed_values(form)
    if action == "back":
        drafts.save_step(draft, typed)
        return redirect(url_for("wizard.step", draft_id=draft.id, step=STEPS[max(position - 1, 0)]))
    if isinstance(form, HttpSettingsForm) and (answer := _http_action(draft, form, action)) is not None:
        return answer
    if not form.validate():
        drafts.save_step(draft, typed, step=step, completed=False)
        return _render(draft, step, form), 400
    drafts.save_step(draft, typed, step=step, completed=True)
    if step != STEPS[-1]:
        return redirect(url_for("wizard.step", draft_id=draft.id, step=STEPS[position + 1]))
    return _create(draft)


def _fit_secret(draft: WizardDraft, form: HttpSettingsForm) -> None:
    """Standard Webhooks chosen while the secret is still the JWT secret generated for the draft:
    a ``whsec_`` one is generated instead (a JWT secret is never used as one)."""
    secret = form.jwt_secret.data or ""
    if form.chosen_format() == "standard" and secret == draft.data.get("jwt_secret") and not secret.startswith(
        rules.STANDARD_SECRET_PREFIX
    ):
        form.jwt_secret.data = service.generate_secret("standard")


def _http_action(draft: WizardDraft, form: HttpSettingsForm, action: str) -> str | tuple[str, int] | None:
    """The HTTP step's buttons that stay on the page (add or remove a header, send a test), else None."""
    if apply_row_action(form, action):
        drafts.save_step(draft, _typed_values(form), step="http", completed=False)
        return _render(draft, "http", form)
    if action == "send_test":
        result = sendtest.from_wizard(current_user.account, draft, form)
        drafts.save_step(draft, _typed_values(form), step="http", completed=result is not None)
        return _render(draft, "http", form, test_result=result), 200 if result else 400
    return None


def _create(draft: WizardDraft) -> Response:
    values = draft.data
    fields = {name: values.get(name) for name in FIELD_STEPS if name != "data"}
    fields["active"] = bool(values.get("active"))
    fields["headers"] = [tuple(pair) for pair in values.get("headers", [])]
    try:
        fields["data"] = rules.data_text(values.get("data_text")) if values.get("http_method") == "POST" else {}
        webhook = service.create_webhook(current_user.account, fields)
    except (rules.RuleError, service.WebhookValidationError) as exc:
        errors = exc.errors if isinstance(exc, service.WebhookValidationError) else {"data": [str(exc)]}
        first = min((FIELD_STEPS.get(name, "general") for name in errors), key=STEPS.index)
        drafts.save_step(draft, {}, step=first, completed=False)
        flash("Please correct the highlighted fields.", "error")
        return redirect(url_for("wizard.step", draft_id=draft.id, step=first, check=1))
    drafts.discard_draft(draft)
    flash(f"Webhook “{webhook.label}” created.", "success")
    return redirect(url_for("webhooks.details", webhook_id=webhook.id))


def _render(draft: WizardDraft, step: str, form: StepForm, test_result: AttemptResult | None = None) -> str:
    account = current_user.account
    context: dict[str, Any] = {}
    if step == "type":
        product = tenancy.usable_product(account, draft.data.get("product_id"))
        context = {"choices": service.type_choices(account, product), "product": product}
    elif isinstance(form, ProductForm):  # the product step
        context = {"products": form.products}
    return render_template(
        f"wizard/{step}.html",
        draft=draft,
        step=step,
        steps=STEPS,
        titles=TITLES,
        form=form,
        is_last=step == STEPS[-1],
        method=draft.data.get("http_method", "POST"),
        test_result=test_result,
        sample_webhook_id=sendtest.SAMPLE_WEBHOOK_ID,
        **context,
    )
