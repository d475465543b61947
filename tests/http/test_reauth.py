"""Asking for the password again (docs/security.md, "Asking for the password again"): revealing a
secret, switching to the next secret and removing two-factor login need the password typed
within REAUTH_WINDOW; the API's tokens do not."""

from __future__ import annotations

import html

from tests.conftest import PASSWORD, make_webhook
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

SECRET = "a-secret-nobody-should-see-0123456789abcd"
NEXT = "the-next-secret-nobody-should-see-0123456"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def stale(client) -> None:
    """The password was typed longer ago than REAUTH_WINDOW."""
    with client.session_transaction() as session:
        session["reauth_at"] -= 301


def confirm(client, location: str, password: str = PASSWORD):
    return client.post(location, data={"password": password})


def test_revealing_asks_for_the_password_then_shows_the_secret(client, auth, vendor):
    hook = make_webhook(vendor, jwt_secret=SECRET)
    auth.login()
    url = f"/webhooks/{hook.id}?tab=http&reveal=secret"
    assert SECRET in text(client.get(url))  # the login typed it moments ago
    stale(client)
    asked = client.get(url)
    assert asked.status_code == 302
    assert asked.headers["Location"] == f"/confirm-password?next=/webhooks/{hook.id}?tab%3Dhttp%26reveal%3Dsecret"
    page = text(client.get(asked.headers["Location"]))
    assert "Confirm your password" in page and SECRET not in page
    wrong = confirm(client, asked.headers["Location"], "not it")
    assert "That is not your password." in text(wrong) and SECRET not in text(wrong)
    back = confirm(client, asked.headers["Location"])
    assert back.headers["Location"] == url
    assert SECRET in text(client.get(url))


def test_the_secret_json_answers_401_for_the_script(client, auth, vendor):
    hook = make_webhook(vendor, jwt_secret=SECRET)
    auth.login()
    assert client.get(f"/webhooks/{hook.id}/secret", headers={"Accept": "application/json"}).json == {
        "jwt_secret": SECRET
    }
    stale(client)
    refused = client.get(f"/webhooks/{hook.id}/secret", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    assert refused.json["error_code"] == "REAUTH_REQUIRED" and SECRET not in refused.get_data(as_text=True)
    assert refused.json["confirm_url"].startswith("/confirm-password?next=")


def test_switching_asks_for_the_password_then_returns_to_the_tab(client, auth, vendor):
    hook = make_webhook(vendor, jwt_secret=SECRET)
    hook.jwt_secret_next = NEXT
    db.session.commit()
    auth.login()
    stale(client)
    tab = f"http://localhost/webhooks/{hook.id}?tab=http"
    asked = client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"}, headers={"Referer": tab})
    assert asked.headers["Location"] == f"/confirm-password?next=/webhooks/{hook.id}?tab%3Dhttp"
    assert db.session.get(Webhook, hook.id).jwt_secret == SECRET  # nothing switched
    back = confirm(client, asked.headers["Location"])
    assert back.headers["Location"] == f"/webhooks/{hook.id}?tab=http"
    assert client.post(f"/webhooks/{hook.id}/secret/switch").status_code == 302  # the box left unticked
    assert db.session.get(Webhook, hook.id).jwt_secret == SECRET
    assert client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Webhook, hook.id).jwt_secret == NEXT


def test_a_remember_cookie_session_has_not_typed_the_password(client, vendor):
    hook = make_webhook(vendor, jwt_secret=SECRET)
    client.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    client.delete_cookie("session", domain="localhost")
    assert client.get("/webhooks").status_code == 200
    assert client.get(f"/webhooks/{hook.id}?tab=http&reveal=secret").status_code == 302


def test_the_confirm_page_only_goes_back_to_this_site(client, auth, vendor):
    auth.login()
    back = confirm(client, "/confirm-password?next=https://evil.example/")
    assert back.headers["Location"] == "/webhooks"


def test_api_tokens_are_not_asked(client, vendor, token):
    hook = make_webhook(vendor, jwt_secret=SECRET)
    response = client.get(f"/public/v1/notifications/webhooks/{hook.id}", headers={"Authorization": f"ApiKey {token}"})
    assert response.status_code == 200 and response.json["jwt_secret"] == SECRET
