"""CSRF protection (docs/architecture.md, "Security"), on an app built with ``WTF_CSRF_ENABLED=True``.

The ``app`` fixture makes the tables and the tenants; a second app on the same database has CSRF
switched on, as in production.
"""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, make_webhook
from tests.pages import REFUSED, csrf_token, login
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.webhooks.tabs import TABS


def is_logged_in(client: FlaskClient) -> bool:
    return client.get("/webhooks").status_code == 200


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_login_without_a_valid_token_is_refused(csrf_client, vendor, token):
    csrf_token(csrf_client.get("/login"))  # the session has a real token; the post does not send it
    data = {"email": vendor.email, "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = csrf_client.post("/login", data=data)
    assert response.status_code == 400
    assert REFUSED in html.unescape(response.get_data(as_text=True))
    assert not is_logged_in(csrf_client)


def test_login_with_the_token_from_the_page_succeeds(csrf_client, vendor):
    token = csrf_token(csrf_client.get("/login"))
    response = csrf_client.post("/login", data={"email": vendor.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/webhooks"
    assert is_logged_in(csrf_client)


def test_disable_needs_the_token(csrf_client, vendor):
    hook = make_webhook(vendor, active=True)
    login(csrf_client, vendor.email)

    response = csrf_client.post(f"/webhooks/{hook.id}/disable")
    assert response.status_code == 400
    assert REFUSED in html.unescape(response.get_data(as_text=True))
    db.session.rollback()
    assert db.session.get(Webhook, hook.id).active is True

    token = csrf_token(csrf_client.get(f"/webhooks/{hook.id}"))
    response = csrf_client.post(f"/webhooks/{hook.id}/disable", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.rollback()
    assert db.session.get(Webhook, hook.id).active is False


def test_logout_needs_the_token(csrf_client, vendor):
    login(csrf_client, vendor.email)
    assert csrf_client.post("/logout").status_code == 400
    assert is_logged_in(csrf_client)
    token = csrf_token(csrf_client.get("/webhooks"))
    assert csrf_client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not is_logged_in(csrf_client)


def test_every_form_on_the_pages_carries_the_token(csrf_client, vendor):
    hook = make_webhook(vendor)
    login(csrf_client, vendor.email)
    pages = ["/webhooks", f"/webhooks/{hook.id}", f"/webhooks/{hook.id}/edit", f"/webhooks/{hook.id}/delete"]
    pages += [f"/webhooks/{hook.id}?tab={tab}" for tab in TABS]
    pages += ["/settings/tokens", csrf_client.get("/webhooks/new").headers["Location"]]
    for url in pages:
        body = csrf_client.get(url).get_data(as_text=True)
        forms = re.findall(r"<form\b[^>]*>.*?</form>", body, re.S)
        posting = [form for form in forms if 'method="post"' in form]
        assert posting, url
        for form in posting:
            assert 'name="csrf_token"' in form, (url, form[:200])


def test_rotating_the_secret_needs_the_token(csrf_client, vendor):
    hook = make_webhook(vendor)
    login(csrf_client, vendor.email)
    for action in ("next", "switch", "discard"):
        assert csrf_client.post(f"/webhooks/{hook.id}/secret/{action}").status_code == 400
    db.session.rollback()
    assert db.session.get(Webhook, hook.id).jwt_secret_next is None
    token = csrf_token(csrf_client.get(f"/webhooks/{hook.id}?tab=http"))
    assert csrf_client.post(f"/webhooks/{hook.id}/secret/next", data={"csrf_token": token}).status_code == 302
    db.session.rollback()
    assert db.session.get(Webhook, hook.id).jwt_secret_next is not None
