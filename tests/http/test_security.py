"""Security headers, error pages, request size limits and the production settings
(docs/architecture.md, "Security" and "Configuration")."""

from __future__ import annotations

import html
import os
import subprocess
import sys

import pytest

from tests.conftest import make_webhook
from webhookapp import create_app
from webhookapp.app import ROOT
from webhookapp.infra.crypto import CryptoError, new_key
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Webhook

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
TOO_LARGE = 256 * 1024 + 1


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def assert_security_headers(response) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_security_headers_on_public_and_private_pages(client, auth, vendor):
    hook = make_webhook(vendor)
    assert_security_headers(client.get("/login"))
    assert_security_headers(client.get("/webhooks"))  # the redirect to the login page
    auth.login()
    for url in ["/webhooks", f"/webhooks/{hook.id}", f"/webhooks/{hook.id}/secret", "/webhooks/WH-0", "/logout"]:
        response = client.get(url)
        assert_security_headers(response)
        assert "Strict-Transport-Security" not in response.headers  # testing runs over plain HTTP


def test_session_cookie_is_http_only_and_same_site(client, auth, vendor):
    response = auth.login()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_unknown_pages_are_a_404_page(client, auth, vendor):
    auth.login()
    for url in ["/webhooks/WH-123-456-789", "/webhooks/WH-123-456-789/delete", "/no/such/page"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert "<h1>Not found</h1>" in text(response), url


def test_login_body_over_the_limit_is_413(client, vendor):
    response = client.post("/login", data={"email": vendor.email, "password": "x" * TOO_LARGE})
    assert response.status_code == 413
    assert "<h1>Request too large</h1>" in text(response)
    assert "What you sent is larger than this service accepts." in text(response)
    assert client.get("/webhooks").status_code == 302


def test_body_just_under_the_limit_is_read(client, vendor):
    response = client.post("/login", data={"email": vendor.email, "password": "x" * (200 * 1024)})
    assert response.status_code == 200
    assert "Field cannot be longer than 1024 characters." in text(response)


def test_edit_body_over_the_limit_is_413_and_changes_nothing(client, auth, vendor):
    hook = make_webhook(vendor, label="Small")
    auth.login()
    data = {"label": "Big", "external_url": hook.external_url, "http_method": "POST", "description": "d" * TOO_LARGE}
    response = client.post(f"/webhooks/{hook.id}/edit", data=data)
    assert response.status_code == 413
    assert_security_headers(response)
    db.session.rollback()
    assert db.session.get(Webhook, hook.id).label == "Small"


def test_wizard_body_over_the_limit_is_413(client, auth, vendor):
    auth.login()
    draft_url = client.get("/webhooks/new").headers["Location"]
    response = client.post(draft_url, data={"label": "x", "description": "d" * TOO_LARGE, "action": "next"})
    assert response.status_code == 413


# --- production settings -------------------------------------------------------------------------


def test_production_refuses_to_start_without_secret_key():
    """A fresh interpreter with SECRET_KEY unset in the environment, as a real deployment starts."""
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    code = "from webhookapp import create_app; create_app('production')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "RuntimeError: SECRET_KEY must be set in production (WEBHOOKAPP_CONFIG=production)." in result.stderr


@pytest.mark.parametrize("empty", [None, ""])
def test_production_refuses_to_start_without_encryption_keys(empty):
    with pytest.raises(RuntimeError, match=r"^WEBHOOK_ENCRYPTION_KEYS must be set in production.*secrets new-key"):
        create_app("production", {"SECRET_KEY": "k" * 32, "WEBHOOK_ENCRYPTION_KEYS": empty})


def test_a_malformed_encryption_key_stops_the_start_naming_the_setting():
    with pytest.raises(CryptoError, match=r"^WEBHOOK_ENCRYPTION_KEYS: key 1 is not 32 bytes"):
        create_app("testing", {"WEBHOOK_ENCRYPTION_KEYS": "not-a-key"})


@pytest.mark.parametrize("empty", [None, ""])
def test_production_refuses_an_empty_secret_key(empty):
    with pytest.raises(RuntimeError, match=r"^SECRET_KEY must be set in production"):
        create_app("production", {"SECRET_KEY": empty})


def test_production_with_a_secret_key_uses_secure_cookies_and_hsts():
    app = create_app(
        "production",
        {"SECRET_KEY": "k" * 32, "SQLALCHEMY_DATABASE_URI": "sqlite://", "WEBHOOK_ENCRYPTION_KEYS": new_key()},
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["WTF_CSRF_ENABLED"] is True
    response = app.test_client().get("/login")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    with app.app_context():
        dispose_engines()


def test_the_sqlite_database_is_readable_by_its_owner_alone(tmp_path, redis_url):
    path = tmp_path / "private.sqlite"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "REDIS_URL": redis_url})
    with app.app_context():
        db.create_all()
        db.session.execute(db.text("SELECT 1"))
        created = [path, *(p for p in tmp_path.iterdir() if p.name.startswith("private.sqlite-"))]
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in created} == {p.name: "0o600" for p in created}
        db.session.remove()
        dispose_engines()
