"""Send test request on the wizard's HTTP Settings step and on the edit page
(docs/architecture.md, "Send test request"): the typed settings, sent now to a real handler,
signed with the typed secret; nothing saved, nothing recorded."""

from __future__ import annotations

import re
from datetime import datetime

import jwt
import pytest

from tests.conftest import make_webhook
from tests.pages import (
    REFUSED,
    Wizard,
    checked_value,
    csrf_token,
    field_errors,
    input_value,
    login,
    text,
    textarea_value,
)
from tests.servers import free_port
from webhookapp.engine.signing import PAYLOAD_KEYS
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.webhooks.sendtest import NO_SECRET, SAMPLE_WEBHOOK_ID

TYPED_SECRET = "typed-in-the-form-and-not-saved-yet"


def result_box(body: str) -> str:
    match = re.search(r'<div class="test-result test-result-(?:ok|bad)"[^>]*>(.*?)</div>', body, re.S)
    assert match, "no result box"
    return re.sub(r"\s+", " ", match.group(0))


def claims_of(request, secret: str) -> dict:
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer" and jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "HS256"}
    return jwt.decode(token, secret, algorithms=["HS256"])


def nothing_recorded(hook_id: str | None = None) -> bool:
    db.session.rollback()
    attempts = db.session.scalars(db.select(Attempt)).all()
    if hook_id is None:
        return not attempts
    hook = db.session.get(Webhook, hook_id)
    counts = (hook.events_count, hook.triggers_count, hook.success_count, hook.failure_count, hook.next_trigger_at)
    return not attempts and counts == (0, 0, 0, 0, None) and hook.last_success_at is hook.last_failure_at is None


def edit_form(hook: Webhook, **changes: str) -> dict[str, str]:
    values = {
        "label": hook.label, "description": hook.description or "", "active": "y", "external_url": hook.external_url,
        "jwt_secret": "", "http_method": hook.http_method, "headers-0-name": "", "headers-0-value": "",
        "custom_data": "", "action": "send_test",
    }  # fmt: skip
    values.update(changes)
    return values


def test_edit_sends_the_typed_settings_signed_with_the_typed_secret(client, auth, vendor, handler):
    hook = make_webhook(vendor, external_url="https://handler.example.com/old")
    saved = (hook.external_url, hook.jwt_secret, hook.label, dict(hook.headers))
    auth.login()
    url = handler.behave("/new", body=b'{"accepted": "<yes>"}')
    response = client.post(f"/webhooks/{hook.id}/edit", data=edit_form(
        hook, label="Renamed <b>", external_url=url, jwt_secret=TYPED_SECRET, **{"headers-0-name": "X-Api-Key",
        "headers-0-value": "k-1"}, custom_data='{"purpose": "test"}'))  # fmt: skip
    assert response.status_code == 200
    [sent] = handler.wait_for("/new")
    assert sent.method == "POST" and sent.headers["X-Api-Key"] == "k-1"
    claims = claims_of(sent, TYPED_SECRET)
    exp = claims.pop("exp")
    assert tuple(claims) == PAYLOAD_KEYS and sent.json() == claims
    assert exp == int(datetime.fromisoformat(claims["triggered_at"]).timestamp()) + 600
    assert (claims["webhook_id"], claims["webhook_name"]) == (hook.id, "Renamed <b>")
    assert claims["data"] == {"purpose": "test"}

    raw = response.get_data(as_text=True)
    assert "<b>" not in raw.split('<main id="main"', 1)[1]  # the label and the answer are escaped
    body = text(response)
    box = result_box(body)
    assert "HTTP 200" in box and re.search(r"in \d+ ms", box) and '{"accepted": "<yes>"}' in box
    assert "Sent before the webhook exists" not in box  # the edit page's test carries the real id
    assert 'role="status"' in body
    # The form shows what was typed, secret included; nothing was saved or recorded.
    assert input_value(raw, "external_url") == url and input_value(raw, "label") == "Renamed <b>"
    assert input_value(raw, "jwt_secret") == TYPED_SECRET and input_value(raw, "headers-0-name") == "X-Api-Key"
    assert textarea_value(raw, "custom_data").strip() == '{"purpose": "test"}'
    assert nothing_recorded(hook.id)
    stored = db.session.get(Webhook, hook.id)
    assert (stored.external_url, stored.jwt_secret, stored.label, dict(stored.headers)) == saved


def test_edit_with_the_secret_left_empty_signs_with_the_stored_one(client, auth, vendor, handler):
    hook = make_webhook(vendor, http_method="GET")
    auth.login()
    url = handler.behave("/get", status=503, body=b"down for maintenance")
    response = client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, external_url=url))
    assert response.status_code == 200
    [sent] = handler.wait_for("/get")
    assert sent.method == "GET" and sent.body == b""
    assert claims_of(sent, hook.jwt_secret)["webhook_id"] == hook.id
    box = result_box(text(response))
    assert "test-result-bad" in box and "HTTP 503" in box and "The handler answered HTTP 503." in box
    assert "down for maintenance" in box
    assert nothing_recorded(hook.id)


def test_edit_with_a_field_error_sends_nothing(client, auth, vendor, handler):
    hook = make_webhook(vendor)
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, external_url="ftp://nowhere.test/"))
    assert response.status_code == 400
    assert field_errors(response, "external_url") == ["Endpoint URL must start with http:// or https://."]
    assert 'class="test-result' not in response.get_data(as_text=True)
    assert handler.received == [] and nothing_recorded(hook.id)


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "[fd00::1]"])
def test_the_ssrf_guard_refuses_a_private_address(client, auth, vendor, handler, address):
    """Loopback is allowed in tests (WEBHOOK_ALLOWED_NETWORKS); these addresses stay refused."""
    hook = make_webhook(vendor)
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, external_url=f"http://{address}/hook"))
    assert response.status_code == 200
    box = result_box(text(response))
    assert "No answer" in box and "test-result-bad" in box
    assert re.search(r"is a (private|link-local)[\w-]* address|not a public address", box), box
    assert nothing_recorded(hook.id)


def test_edit_page_offers_the_button_and_a_status_region(client, auth, vendor):
    hook = make_webhook(vendor)
    auth.login()
    body = client.get(f"/webhooks/{hook.id}/edit").get_data(as_text=True)
    assert '<button type="submit" name="action" value="send_test"' in body
    assert '<div role="status">' in body and 'class="test-result' not in body


def test_send_test_needs_the_csrf_token(csrf_client, vendor, handler):
    hook = make_webhook(vendor)
    login(csrf_client, vendor.email)
    data = edit_form(hook, external_url=handler.behave("/csrf"))
    response = csrf_client.post(f"/webhooks/{hook.id}/edit", data=data)
    assert response.status_code == 400 and REFUSED in text(response)
    assert handler.received == []
    token = csrf_token(csrf_client.get(f"/webhooks/{hook.id}/edit"))
    assert csrf_client.post(f"/webhooks/{hook.id}/edit", data={**data, "csrf_token": token}).status_code == 200
    assert len(handler.wait_for("/csrf")) == 1


def test_the_wizard_sends_the_draft_with_the_typed_secret(client, auth, vendor, handler):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    url = handler.behave("/wizard")
    response = wizard.post("http", "send_test", external_url=url, jwt_secret=TYPED_SECRET, http_method="POST",
                           **{"headers-0-name": "X-Env", "headers-0-value": "staging"})  # fmt: skip
    assert response.status_code == 200
    [sent] = handler.wait_for("/wizard")
    claims = claims_of(sent, TYPED_SECRET)
    claims.pop("exp")
    assert sent.json() == claims and sent.headers["X-Env"] == "staging"
    assert claims["webhook_id"] == SAMPLE_WEBHOOK_ID and claims["webhook_name"] == "Orders hook"
    assert (claims["account_id"], claims["product_id"]) == (vendor.account.id, vendor.products[0].id)
    assert claims["object_class"] == "fulfillment_request" and claims["data"] == {}
    body = text(response)
    assert "HTTP 200" in result_box(body)
    assert input_value(body, "external_url") == url and input_value(body, "jwt_secret") == TYPED_SECRET
    assert checked_value(body, "http_method") == "POST" and input_value(body, "headers-0-value") == "staging"
    assert 'id="step-title" tabindex="-1">' in body  # the result, not the heading, takes the focus
    assert wizard.draft().data["external_url"] == url  # kept in the draft, as Back or a reload would
    assert nothing_recorded() and db.session.scalars(db.select(Webhook)).all() == []


SAMPLE_ID_NOTE = (
    "Sent before the webhook exists, so the JWT's <code>webhook_id</code> is <code>WH-000-000-000</code>; "
    "your handler will see the real id after Create."
)


def test_the_wizard_says_which_webhook_id_its_test_carries(client, auth, vendor, handler):
    """A handler that checks the id refuses the wizard's test: the result says why."""
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    url = handler.behave("/checks-id", status=403, body=b'{"error": "unknown webhook_id"}')
    response = wizard.post("http", "send_test", external_url=url, jwt_secret=TYPED_SECRET)
    [sent] = handler.wait_for("/checks-id")
    assert claims_of(sent, TYPED_SECRET)["webhook_id"] == SAMPLE_WEBHOOK_ID == "WH-000-000-000"
    box = result_box(text(response))
    assert "HTTP 403" in box and SAMPLE_ID_NOTE in box
    # No handler got it: nothing to say about what it carried.
    refused = wizard.post("http", "send_test", external_url=f"http://127.0.0.1:{free_port()}/", jwt_secret=TYPED_SECRET)
    assert "Connection refused" in result_box(text(refused)) and "Sent before the webhook exists" not in text(refused)


def test_the_wizard_sends_a_sample_draft_to_a_validation_type(client, auth, vendor, handler):
    auth.login()
    wizard = Wizard(client, vendor.products[1].id)
    wizard.values["type"] = {"type_key": "fulfillment_request.validator"}
    wizard.complete("general", "product", "type")
    url = handler.behave("/validate", body=b'{"id": "PR-0000-0000-0000-001"}')
    response = wizard.post("http", "send_test", external_url=url, jwt_secret=TYPED_SECRET)
    assert response.status_code == 200
    [sent] = handler.wait_for("/validate")
    assert sent.method == "POST" and claims_of(sent, TYPED_SECRET)["webhook_id"] == SAMPLE_WEBHOOK_ID
    draft = sent.json()
    assert draft["type"] == "purchase" and draft["status"] == "draft"
    assert draft["asset"]["product"] == {"id": vendor.products[1].id, "name": "Acme Dynamic"}
    assert "HTTP 200" in result_box(text(response)) and nothing_recorded()


def test_the_wizard_needs_a_secret_to_sign_with(client, auth, vendor, handler):
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    response = wizard.post("http", "send_test", external_url=handler.behave("/nosecret"), jwt_secret="")
    assert response.status_code == 400
    assert field_errors(response, "jwt_secret") == [NO_SECRET]
    assert handler.received == [] and nothing_recorded()
    assert "http" not in wizard.draft().completed
