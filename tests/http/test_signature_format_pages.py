"""The signature format on the pages: the wizard's HTTP Settings step, Edit and the HTTP Settings
tab (docs/architecture.md, "Signature formats")."""

from __future__ import annotations

import html

from tests.conftest import make_webhook
from tests.pages import Wizard, checked_value, input_value, text
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import secret_rotation


def newest(account_id: str) -> Webhook:
    db.session.rollback()
    return db.session.scalars(
        db.select(Webhook).where(Webhook.account_id == account_id).order_by(Webhook.created_at.desc())
    ).first()


def test_the_wizard_creates_a_standard_webhook_with_a_whsec_secret(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    body = text(wizard.get("http"))
    assert checked_value(body, "signature_format") == "jwt"  # the platform's, the default
    generated = input_value(body, "jwt_secret")
    assert wizard.post("http", signature_format="standard", jwt_secret=generated).status_code == 302
    secret = wizard.draft().data["jwt_secret"]
    assert secret.startswith("whsec_")  # the JWT secret generated for the draft is not used as one
    assert checked_value(text(wizard.get("http")), "signature_format") == "standard"
    assert wizard.complete("data").status_code == 302
    created = newest(vendor.account.id)
    assert (created.signature_format, created.jwt_secret) == ("standard", secret)


def test_the_wizard_refuses_a_typed_secret_that_is_not_whsec(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    response = wizard.post("http", signature_format="standard", jwt_secret="my-own-typed-secret")
    assert response.status_code == 400
    assert "A Standard Webhooks secret starts with whsec_" in text(response)


def test_edit_stages_a_change_of_format_and_the_tab_says_so(client, auth, vendor):
    hook = make_webhook(vendor, external_url="https://handler.example.com/hook")
    jwt_secret = hook.jwt_secret
    auth.login()
    page = text(client.get(f"/webhooks/{hook.id}/edit"))
    assert checked_value(page, "signature_format") == "jwt"
    form = {"label": hook.label, "description": "", "active": "y", "external_url": hook.external_url,
            "jwt_secret": "", "http_method": "POST", "signature_format": "standard", "custom_data": "",
            "action": "save"}  # fmt: skip
    assert client.post(f"/webhooks/{hook.id}/edit", data=form).status_code == 302
    db.session.rollback()
    staged = db.session.get(Webhook, hook.id)
    assert (staged.signature_format, staged.signature_switch_pending) == ("standard", True)
    assert staged.jwt_secret == jwt_secret
    assert staged.jwt_secret_next.startswith("whsec_")
    tab = html.unescape(client.get(f"/webhooks/{hook.id}?tab=http").get_data(as_text=True))
    assert "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)" in " ".join(
        tab.replace("<code>", "").replace("</code>", "").split()
    )
    assert 'id="format-switch-pending"' in tab

    # Generate new secret on Edit makes one in the chosen format's form.
    generated = text(client.post(f"/webhooks/{hook.id}/edit", data={**form, "action": "generate_secret"}))
    assert input_value(generated, "jwt_secret").startswith("whsec_")
    assert "A new Standard Webhooks secret was generated" in generated

    secret_rotation.switch_to_next(staged)
    form_without_format = {name: value for name, value in form.items() if name != "signature_format"}
    assert client.post(f"/webhooks/{hook.id}/edit", data=form_without_format).status_code == 302
    db.session.rollback()
    assert db.session.get(Webhook, hook.id).signature_format == "standard"  # kept when the form has none
