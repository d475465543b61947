"""The Create Webhook wizard over HTTP: navigation, drafts, header rows and creation.

Validation of each step is in ``test_wizard_validation.py``; both drive the wizard through
``tests.pages``.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, make_tenant
from tests.pages import STEPS, Wizard, checked_value, field_errors, input_value, inputs, text, textarea_value
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import accounts


def test_start_opens_a_draft_with_a_strong_secret_and_post(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    draft = wizard.draft()
    assert draft.user_id == vendor.user.id
    assert draft.completed == []
    assert draft.data["http_method"] == "POST"
    assert len(draft.data["jwt_secret"]) >= 32
    assert wizard.get("general").status_code == 200


def test_http_step_prefills_the_generated_secret(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    body = text(wizard.get("http"))
    secret = input_value(body, "jwt_secret")
    assert len(secret) >= 32
    assert secret == wizard.draft().data["jwt_secret"]
    assert checked_value(body, "http_method") == "POST"
    assert secret != Wizard(client, vendor.products[0].id).draft().data["jwt_secret"]


def test_later_steps_cannot_be_opened_early(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    for step in STEPS[1:]:
        response = wizard.get(step)
        assert response.status_code == 302
        assert response.headers["Location"] == wizard.url("general")
    response = wizard.post("data", custom_data="{}")
    assert response.headers["Location"] == wizard.url("general")
    assert wizard.draft().data.get("data_text") is None  # the early post saved nothing
    wizard.complete("general")
    assert wizard.get("http").headers["Location"] == wizard.url("product")
    assert wizard.get("product").status_code == 200


def test_back_keeps_what_was_typed(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    response = wizard.post("http", action="back", external_url="https://typed.example/x", jwt_secret="typed")
    assert response.headers["Location"] == wizard.url("type")
    assert checked_value(text(wizard.get("type")), "type_key") == "fulfillment_request.event"
    body = text(wizard.get("http"))
    assert input_value(body, "external_url") == "https://typed.example/x"
    assert input_value(body, "jwt_secret") == "typed"
    assert wizard.post("product", action="back").headers["Location"] == wizard.url("general")
    body = text(wizard.get("general"))
    assert input_value(body, "label") == "Orders hook"
    assert textarea_value(body, "description") == "Watches the order queue"
    assert checked_value(text(wizard.get("product")), "product_id") == vendor.products[0].id


def test_reload_keeps_what_was_typed(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    typed = {"external_url": "ftp://typed.example", "jwt_secret": "kept", "http_method": "GET"}
    assert wizard.post("http", **typed, **{"headers-0-name": "X-A", "headers-0-value": "1"}).status_code == 400
    body = text(wizard.get("http"))
    assert input_value(body, "external_url") == "ftp://typed.example"
    assert input_value(body, "jwt_secret") == "kept"
    assert checked_value(body, "http_method") == "GET"
    assert (input_value(body, "headers-0-name"), input_value(body, "headers-0-value")) == ("X-A", "1")


def test_cancel_deletes_the_draft(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product")
    response = wizard.post("type", action="cancel")
    assert response.headers["Location"] == "/webhooks"
    assert wizard.draft() is None
    assert "Webhook creation cancelled." in text(client.get("/webhooks"))
    assert wizard.get("general").status_code == 404
    assert db.session.query(Webhook).count() == 0


def test_add_and_remove_header_rows(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    rows = {"headers-0-name": "X-One", "headers-0-value": "1"}
    response = wizard.post("http", action="add_header", **rows)
    assert response.status_code == 200
    body = text(response)
    assert len(inputs(body, "headers-1-name")) == 1
    assert (input_value(body, "headers-0-name"), input_value(body, "headers-1-name")) == ("X-One", "")
    rows |= {"headers-1-name": "X-Two", "headers-1-value": "2", "headers-2-name": "X-Three", "headers-2-value": "3"}
    body = text(wizard.post("http", action="remove_header-1", **rows))
    assert [input_value(body, f"headers-{i}-name") for i in range(2)] == ["X-One", "X-Three"]
    assert inputs(body, "headers-2-name") == []
    assert wizard.draft().data["headers"] == [["X-One", "1"], ["X-Three", "3"]]
    assert "http" not in wizard.draft().completed  # row buttons do not advance
    body = text(wizard.post("http", action="remove_header-0", **{"headers-0-name": "X-One", "headers-0-value": "1"}))
    assert input_value(body, "headers-0-name") == ""  # one empty row stays


def test_create_a_post_webhook_with_headers_and_data(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[1].id)
    wizard.values["http"] |= {"headers-0-name": "X-Api-Key", "headers-0-value": "abc", "headers-1-name": "X-Env"}
    wizard.values["http"]["headers-1-value"] = "prod"
    wizard.values["data"]["custom_data"] = '{"purpose": "demo", "tags": ["a", "b"]}'
    wizard.complete("general", "product", "type", "http")
    response = wizard.complete("data")
    [webhook] = db.session.query(Webhook).all()
    assert response.headers["Location"] == f"/webhooks/{webhook.id}"
    assert (webhook.account_id, webhook.product_id) == (vendor.account.id, vendor.products[1].id)
    assert (webhook.label, webhook.description, webhook.active) == ("Orders hook", "Watches the order queue", True)
    assert (webhook.object_class, webhook.type) == ("fulfillment_request", "event")
    assert (webhook.http_method, webhook.external_url) == ("POST", "https://handler.example.com/orders")
    assert webhook.jwt_secret == "a-shared-secret"
    assert webhook.headers == {"X-Api-Key": "abc", "X-Env": "prod"}
    assert webhook.data == {"purpose": "demo", "tags": ["a", "b"]}
    assert wizard.draft() is None
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Webhook “Orders hook” created." in text(page)


def test_create_a_get_webhook_without_data(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.values["general"] = {"label": "Listing GET", "description": ""}  # Enabled left off
    wizard.values["type"]["type_key"] = "listing_request.event"
    wizard.values["http"]["http_method"] = "GET"
    wizard.complete("general", "product", "type", "http")
    page = text(wizard.get("data"))
    assert "This webhook uses <strong>GET</strong>" in page
    assert 'name="custom_data" value=""' in page
    response = wizard.complete("data")
    [webhook] = db.session.query(Webhook).all()
    assert response.headers["Location"] == f"/webhooks/{webhook.id}"
    assert (webhook.label, webhook.active, webhook.status) == ("Listing GET", False, "Disabled")
    assert (webhook.object_class, webhook.type) == ("listing_request", "event")
    assert (webhook.http_method, webhook.data, webhook.headers) == ("GET", {}, {})
    assert webhook.jwt_secret == "a-shared-secret"


def test_emptied_secret_is_generated_at_creation(client, auth, vendor):
    """The JWT secret is generated when left empty."""
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.values["http"]["jwt_secret"] = ""
    wizard.complete("general", "product", "type", "http", "data")
    [webhook] = db.session.query(Webhook).all()
    assert len(webhook.jwt_secret) >= 32


def test_create_checks_the_rules_again(client, auth, vendor):
    """A draft made inconsistent with Back (type needs a capability the new product lacks) is caught."""
    auth.login()
    plain, dynamic = vendor.products
    wizard = Wizard(client, dynamic.id)
    wizard.values["type"]["type_key"] = "fulfillment_request.change_validator"
    wizard.complete("general", "product", "type", "http")
    assert wizard.post("product", product_id=plain.id).status_code == 302  # type and http stay completed
    response = wizard.post("data")
    assert response.headers["Location"] == wizard.url("type") + "?check=1"
    assert db.session.query(Webhook).count() == 0
    page = client.get(response.headers["Location"])
    assert "Please correct the highlighted fields." in text(page)
    assert field_errors(page, "type_key") == [
        "Subscription — Change Request — Draft Validation: Requires the product's Dynamic Validation capability."
    ]
    assert "type" not in wizard.draft().completed


@pytest.mark.parametrize("who", ["colleague", "other account"])
def test_another_users_draft_is_404(client, auth, vendor, who):
    """Drafts belong to the person typing, not even to their account."""
    if who == "colleague":
        accounts.create_user(vendor.account.id, "bob@acme.test", PASSWORD)
    else:
        make_tenant("vendor", "Bob Inc", "bob@acme.test", [("Bob Product", False)])
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general")
    auth.logout()
    auth.login("bob@acme.test", PASSWORD)
    assert wizard.get("general").status_code == 404
    assert wizard.get("product").status_code == 404
    assert wizard.post("general", label="Hijacked").status_code == 404
    assert wizard.post("product", action="cancel").status_code == 404
    draft = wizard.draft()
    assert (draft.data["label"], draft.completed) == ("Orders hook", ["general"])


def test_unknown_step_or_draft_is_404(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    assert client.get(f"/webhooks/new/{wizard.id}/review").status_code == 404
    assert client.get("/webhooks/new/ffffffffffffffffffffffffffffffff/general").status_code == 404
