"""Login, logout and the login wall (a login for every page but the login page)."""

from __future__ import annotations

import html

import pytest
from flask import g

from tests.conftest import PASSWORD, make_webhook
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def protected_urls(webhook_id: str) -> list[str]:
    return [
        "/",
        "/webhooks",
        f"/webhooks/{webhook_id}",
        f"/webhooks/{webhook_id}?reveal=secret",
        f"/webhooks/{webhook_id}/secret",
        f"/webhooks/{webhook_id}/edit",
        f"/webhooks/{webhook_id}/delete",
        "/webhooks/new",
        "/webhooks/new/0123456789abcdef0123456789abcdef/general",
        "/settings/tokens",
        "/no/such/page",
    ]


def test_every_page_redirects_to_login_when_logged_out(client, vendor):
    hook = make_webhook(vendor)
    for url in protected_urls(hook.id):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next="), url


def test_login_redirect_carries_the_page_asked_for(client, vendor):
    hook = make_webhook(vendor)
    response = client.get(f"/webhooks/{hook.id}/edit")
    assert response.headers["Location"] == f"/login?next=%2Fwebhooks%2F{hook.id}%2Fedit"
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Please log in to continue." in text(page)


@pytest.mark.parametrize("action", ["enable", "disable", "delete", "edit"])
def test_posts_when_logged_out_change_nothing(client, vendor, action):
    hook = make_webhook(vendor, label="Untouched", active=True)
    response = client.post(f"/webhooks/{hook.id}/{action}", data={"label": "Changed", "action": "save"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    db.session.rollback()
    row = db.session.get(Webhook, hook.id)
    assert (row.label, row.active) == ("Untouched", True)


def test_login_page_is_public(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "<h1>Log in</h1>" in text(response)


def test_login_lands_on_the_webhook_list(client, auth, vendor):
    response = auth.login()
    assert response.status_code == 302
    assert response.headers["Location"] == "/webhooks"
    page = client.get("/webhooks")
    assert page.status_code == 200
    assert "Welcome, Acme Vendor User." in text(page)
    assert vendor.account.id in text(page)


def test_login_email_is_case_insensitive(client, auth, vendor):
    assert auth.login("  ALICE@Acme.Test ").status_code == 302
    assert client.get("/webhooks").status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@acme.test", "wrong password"), ("nobody@acme.test", PASSWORD)],
)
def test_wrong_credentials_show_one_message(client, vendor, email, password):
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 200
    assert "Invalid email or password." in text(response)
    assert client.get("/webhooks").status_code == 302  # still logged out


def test_empty_login_form_shows_field_errors(client, vendor):
    response = client.post("/login", data={"email": "", "password": ""})
    body = text(response)
    assert "Enter your email address." in body
    assert "Enter your password." in body
    assert client.get("/webhooks").status_code == 302


def test_login_follows_a_local_next(client, vendor):
    hook = make_webhook(vendor)
    response = client.post(f"/login?next=/webhooks/{hook.id}", data={"email": vendor.email, "password": PASSWORD})
    assert response.headers["Location"] == f"/webhooks/{hook.id}"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "https://evil.example/webhooks",
        "//evil.example",
        "/\\evil.example",
        "///evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ],
)
def test_login_ignores_an_open_redirect_next(client, vendor, target):
    response = client.post("/login", query_string={"next": target}, data={"email": vendor.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/webhooks"


def test_logout_logs_out(client, auth, vendor):
    auth.login()
    response = auth.logout()
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert "You have been logged out." in text(client.get("/login"))
    assert client.get("/webhooks").status_code == 302


def test_logout_is_post_only(client, auth, vendor):
    auth.login()
    response = client.get("/logout")
    assert response.status_code == 405
    assert client.get("/webhooks").status_code == 200  # still logged in


def cookies_of(client) -> dict[str, str]:
    return {cookie.key: cookie.value for cookie in client._cookies.values()}


def with_cookies(app, cookies: dict[str, str]):
    """A client of another device holding ``cookies``."""
    # The test's app context (and so ``g``, where Flask-Login caches the user) is shared by the
    # test client's requests; a request of a real server starts without it.
    g.pop("_login_user", None)
    other = app.test_client()
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other


def test_logout_ends_the_old_session_and_remember_cookies_on_every_device(app, client, vendor):
    client.post("/login", data={"email": "alice@acme.test", "password": PASSWORD, "remember": "y"})
    laptop = cookies_of(client)
    assert {"session", "remember_token"} <= set(laptop)
    phone = app.test_client()
    phone.post("/login", data={"email": "alice@acme.test", "password": PASSWORD, "remember": "y"})
    assert with_cookies(app, laptop).get("/webhooks").status_code == 200
    assert phone.post("/logout").status_code == 302  # logging out on the phone…
    assert with_cookies(app, laptop).get("/webhooks").status_code == 302  # …ends the laptop's session
    assert with_cookies(app, {"remember_token": laptop["remember_token"]}).get("/webhooks").status_code == 302


def test_a_login_after_logout_gets_a_new_remember_cookie(client, vendor):
    client.post("/login", data={"email": "alice@acme.test", "password": PASSWORD, "remember": "y"})
    first = cookies_of(client)["remember_token"]
    client.post("/logout")
    client.post("/login", data={"email": "alice@acme.test", "password": PASSWORD, "remember": "y"})
    assert cookies_of(client)["remember_token"] != first


def test_a_new_password_ends_every_session(app, client, vendor):
    client.post("/login", data={"email": "alice@acme.test", "password": PASSWORD, "remember": "y"})
    old = cookies_of(client)
    vendor.user.set_password("another long password")
    db.session.commit()
    assert with_cookies(app, old).get("/webhooks").status_code == 302
