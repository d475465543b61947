"""Hostile input on every route: NUL and other control characters, lone surrogates, deep nesting,
huge integers. Each is a 400 or a form error that names the field, changes nothing, and never a
500, on SQLite and PostgreSQL alike; statement parameters never reach a log."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import make_webhook
from tests.engine import api_token
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken, Event, Webhook

HOOKS = "/public/v1/notifications/webhooks"
NUL = "a\x00b"
SURROGATE = "a\ud800b"


def raw_json(client, method: str, url: str, body: dict, token: str):
    """Send ``body`` as JSON text with ensure_ascii, so a lone surrogate travels as ``\\ud800``."""
    return client.open(
        url, method=method, data=json.dumps(body), content_type="application/json",
        headers={"Authorization": f"ApiKey {token}"},
    )  # fmt: skip


def messages(response) -> str:
    return " ".join(response.get_json()["errors"])


def new_hook_body(vendor, **fields) -> dict:
    body = {"label": "Hostile", "product": {"id": vendor.products[0].id}, "object_class": "fulfillment_request",
            "type": "event", "http_method": "POST", "external_url": "https://handler.example/x"}  # fmt: skip
    body.update(fields)
    return body


TEXT_FIELDS = {
    "label": "Name",
    "description": "Description",
    "external_url": "Endpoint URL",
    "jwt_secret": "JWT secret",
}


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["NUL", "surrogate"])
@pytest.mark.parametrize("field", [*TEXT_FIELDS, "headers", "data"])
def test_the_management_api_refuses_unstorable_text_in_every_field(client, vendor, field, bad):
    token = api_token(vendor.account)
    value = {"X-Note": bad} if field == "headers" else {"note": bad} if field == "data" else bad
    response = raw_json(client, "POST", HOOKS, new_hook_body(vendor, **{field: value}), token)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert field.replace("external_url", "Endpoint URL") in messages(response) or TEXT_FIELDS.get(field, "—") in (
        messages(response)
    ) or ("Header" in messages(response) if field == "headers" else "Additional data" in messages(response))
    assert db.session.scalar(db.select(db.func.count()).select_from(Webhook)) == 0


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["NUL", "surrogate"])
def test_a_data_key_with_unstorable_text_is_refused(client, vendor, bad):
    token = api_token(vendor.account)
    response = raw_json(client, "POST", HOOKS, new_hook_body(vendor, data={bad: 1}), token)
    assert response.status_code == 400 and "Additional data" in messages(response)


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["NUL", "surrogate"])
@pytest.mark.parametrize("field", ["id", "object_id", "product_id", "api_url", "object_class"])
def test_the_event_api_refuses_unstorable_text_in_every_field(client, vendor, field, bad):
    make_webhook(vendor)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": vendor.products[0].id, field: bad}
    response = raw_json(client, "POST", "/public/v1/events", body, token)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert f"'{field}'" in messages(response)
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["NUL", "surrogate"])
@pytest.mark.parametrize("field", ["type", "product_id"])
def test_the_validation_api_refuses_unstorable_text(client, vendor, field, bad):
    token = api_token(vendor.account)
    body = {"type": "validator", "product_id": vendor.products[0].id, "request": {}, field: bad}
    response = raw_json(client, "POST", "/public/v1/validations", body, token)
    assert response.status_code == 400 and f"'{field}'" in messages(response)


@pytest.mark.parametrize("query", [f"eq(label,{'%00'})", "label=a%00b", "search=a%00b", "eq(label,%ED%A0%80)"])
def test_rql_values_with_unstorable_text_are_400s(client, vendor, query):
    response = client.get(f"{HOOKS}?{query}", headers={"Authorization": f"ApiKey {api_token(vendor.account)}"})
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert "control characters" in messages(response) or "not" in messages(response)


def test_deeply_nested_rql_is_a_400(client, vendor):
    query = "and(" * 500 + "eq(label,x)" + ")" * 500
    response = client.get(f"{HOOKS}?{query}", headers={"Authorization": f"ApiKey {api_token(vendor.account)}"})
    assert response.status_code == 400 and "nested" in messages(response)


@pytest.mark.parametrize("path", ["/public/v1/notifications/webhooks/WH-%00", "/webhooks/WH-%00"])
def test_ids_with_a_nul_are_not_found(client, auth, vendor, path):
    auth.login()
    response = client.get(path, headers={"Authorization": f"ApiKey {api_token(vendor.account)}"})
    assert response.status_code in (400, 404)


def test_the_edit_page_refuses_a_nul_in_the_description(client, auth, vendor):
    hook = make_webhook(vendor, description="before")
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/edit", data={
        "label": "Hook", "description": NUL, "external_url": hook.external_url, "http_method": "POST",
        "jwt_secret": "", "custom_data": "{}", "active": "y"})  # fmt: skip
    assert response.status_code == 400
    assert "Description may not contain control characters." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Webhook, hook.id).description == "before"


@pytest.mark.parametrize("digits", [4301, 10_000])
def test_a_huge_integer_in_additional_data_is_a_form_error(client, auth, vendor, digits):
    hook = make_webhook(vendor)
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/edit", data={
        "label": "Hook", "description": "", "external_url": hook.external_url, "http_method": "POST",
        "jwt_secret": "", "custom_data": '{"n": ' + "9" * digits + "}", "active": "y"})  # fmt: skip
    assert response.status_code == 400
    assert "Additional data" in response.get_data(as_text=True)


def test_a_huge_integer_in_the_api_is_a_400(client, vendor):
    body = json.dumps(new_hook_body(vendor)).replace('"Hostile"', '"H", "data": {"n": ' + "9" * 5000 + "}")
    response = client.post(HOOKS, data=body, content_type="application/json",
                           headers={"Authorization": f"ApiKey {api_token(vendor.account)}"})  # fmt: skip
    assert response.status_code == 400


def test_a_token_name_with_a_nul_is_a_form_error(client, auth, vendor):
    auth.login()
    response = client.post("/settings/tokens", data={"name": NUL, "creation_key": "k" * 32, "scopes": ["events:write"]})
    assert response.status_code == 400 and "control characters" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(ApiToken)) == 0


def test_a_login_with_a_nul_is_refused_plainly(client, vendor):
    response = client.post("/login", data={"email": "alice@acme.test\x00", "password": "x\x00"})
    assert response.status_code in (200, 400)
    assert "Invalid email or password." in response.get_data(as_text=True) or "control" in response.get_data(
        as_text=True
    )


def test_statement_parameters_never_reach_a_log(app, vendor, caplog):
    """A statement that fails logs no parameters, so a secret in one cannot leak that way."""
    hook = make_webhook(vendor, jwt_secret="a-secret-that-must-not-leak")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(db.exc.IntegrityError) as failure:  # a duplicate primary key, on any database
        db.session.execute(db.insert(Webhook).values(
            id=hook.id, account_id=vendor.account.id, product_id=hook.product_id, label="x", object_class="x",
            type="x", http_method="POST", external_url="x",
            jwt_secret_encrypted="a-secret-that-must-not-leak"))  # fmt: skip
    db.session.rollback()
    assert "a-secret-that-must-not-leak" not in str(failure.value)
    assert "a-secret-that-must-not-leak" not in caplog.text


def test_a_405_from_the_api_says_what_is_allowed(client):
    response = client.delete("/public/v1/events")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


# A form cannot carry a lone surrogate (browsers replace it); the API tests above send them.
@pytest.mark.parametrize("text", ['{"n": ' + "9" * 5000 + "}", '{"note": "a\\u0000"}'], ids=["huge integer", "NUL"])
def test_the_wizard_refuses_unstorable_additional_data_next_to_the_field(client, auth, vendor, text):
    from tests.pages import Wizard, field_errors

    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type", "http")
    response = wizard.post("data", custom_data=text)
    assert response.status_code == 400
    assert any("Additional data" in message for message in field_errors(response, "custom_data"))
    assert db.session.scalar(db.select(db.func.count()).select_from(Webhook)) == 0
