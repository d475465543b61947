"""Send test request, on the wizard's HTTP Settings step and on the edit page: the settings as
typed, checked as Next or Save checks them, sent once now and shown beside the form. Nothing is
saved but the audit trail's note that it was sent (docs/architecture.md, "Send test request")."""

from __future__ import annotations

from typing import Any

from webhookapp.core import catalog, rules
from webhookapp.core.times import utcnow
from webhookapp.engine.direct import probe
from webhookapp.engine.transport import client_tls
from webhookapp.engine.transport.client_tls import ClientTLS
from webhookapp.engine.types import AttemptResult, WebhookSnapshot
from webhookapp.models import Account, Webhook, WizardDraft, tenancy
from webhookapp.services import audit
from webhookapp.webhooks.forms import EditForm, HttpSettingsForm

SAMPLE_WEBHOOK_ID = "WH-000-000-000"  # a webhook being created has no id yet
NO_SECRET = "Type a JWT secret to sign the test request with (or generate one)."


def from_edit(webhook: Webhook, form: EditForm) -> AttemptResult | None:
    """Send the edit form's settings (an empty secret: the stored one); None when the form has
    errors, which are then on its fields."""
    if not form.validate() or not _client_tls_checked(form):
        return None
    # A validated form has a name and a URL (the fields declare str | None). A typed secret signs
    # in the format chosen on the form; the stored ones as the webhook signs now.
    typed = form.jwt_secret.data or None
    settings = WebhookSnapshot(
        id=webhook.id,
        label=form.label.data or "",
        object_class=webhook.object_class,
        account_id=webhook.account_id,
        product_id=webhook.product_id,
        http_method=form.http_method.data,
        external_url=form.external_url.data or "",
        jwt_secret_encrypted=webhook.jwt_secret_encrypted,
        headers=rules.headers(form.header_pairs()),
        data=(form.parsed_data or {}) if form.http_method.data == "POST" else {},
        last_success_at=webhook.last_success_at,
        last_failure_at=webhook.last_failure_at,
        signature_format=form.chosen_format() if typed else webhook.signature_format,
        signature_switch_pending=webhook.signature_switch_pending,
        jwt_secret_next_encrypted=webhook.jwt_secret_next_encrypted,
    )
    result = probe.send_test(
        settings,
        webhook.catalog_entry,
        product_name=webhook.product.name,
        api_url=webhook.last_event_api_url,
        secret=typed,
        client_tls=_client_tls(webhook.id, form),
    )
    audit.note_webhook("webhook.test_request_sent", webhook, _sent_to(settings))
    return result


def from_wizard(account: Account, draft: WizardDraft, form: HttpSettingsForm) -> AttemptResult | None:
    """Send the HTTP Settings step's values, with the draft's name, product, type and data; None
    when the form has errors (an empty secret among them: there is nothing to sign with yet)."""
    valid = form.validate()
    if not form.jwt_secret.data:
        form.jwt_secret.errors = [*form.jwt_secret.errors, NO_SECRET]
        valid = False
    if not valid:
        return None
    values: dict[str, Any] = draft.data
    entry = catalog.by_key(values.get("type_key") or "")
    product = tenancy.usable_product(account, values.get("product_id"))
    if entry is None or product is None:  # the earlier steps are complete, unless changed meanwhile
        return AttemptResult(started_at=utcnow(), duration_ms=0.0, success=False,
                             error="Choose the product and type again: nothing was sent.")  # fmt: skip
    method = form.http_method.data
    settings = WebhookSnapshot(
        id=SAMPLE_WEBHOOK_ID,
        label=values.get("label") or "",
        object_class=entry.object_class,
        account_id=account.id,
        product_id=product.id,
        http_method=method,
        external_url=form.external_url.data or "",  # validated, as is the secret: neither is empty
        jwt_secret_encrypted=None,  # signed with the typed secret below
        headers=rules.headers(form.header_pairs()),
        data=_draft_data(values.get("data_text")) if method == "POST" else {},
        last_success_at=None,
        last_failure_at=None,
        signature_format=form.chosen_format(),
    )
    result = probe.send_test(
        settings, entry, product_name=product.name, api_url=None, secret=form.jwt_secret.data,
        client_tls=_client_tls(SAMPLE_WEBHOOK_ID, form),
    )  # fmt: skip
    audit.note(
        "webhook.test_request_sent", account_id=account.id, object_type="webhook", object_label=settings.label,
        changes=_sent_to(settings),
    )  # fmt: skip
    return result


def _client_tls(webhook_id: str, form: HttpSettingsForm) -> ClientTLS | None:
    """The certificate as typed (the key: typed, else the one given before) and the CA bundle, or None."""
    cert, key, ca = form.client_tls_values()
    return ClientTLS(webhook_id, cert, key, ca) if (cert and key) or ca else None


def _client_tls_checked(form: HttpSettingsForm) -> bool:
    """The edit form checks its certificate on Save, through the service; a test sends what is
    typed, so it is checked here, with its messages on the fields."""
    found = client_tls.check(*form.client_tls_values())
    for name, message in found.items():
        form[name].errors = [*form[name].errors, message]
    return not found


def _sent_to(settings: WebhookSnapshot) -> dict[str, dict[str, str]]:
    """The entry's details: where the test request went (a secret typed for it is never kept)."""
    return {"external_url": {"after": settings.external_url}, "http_method": {"after": settings.http_method}}


def _draft_data(text: str | None) -> dict[str, Any]:
    """Additional data typed on the last step, if any and valid yet (that step checks it)."""
    try:
        return rules.data_text(text)
    except rules.RuleError:
        return {}
