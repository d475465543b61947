"""Tools for handler writers in a real browser: Send test request on the edit page, and the
Handler code tab's copy buttons."""

from __future__ import annotations

import re

import jwt
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_axe import assert_accessible
from tests.conftest import make_webhook
from tests.servers import HandlerServer
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.webhooks import snippets

pytestmark = pytest.mark.browser

TYPED_SECRET = "a-secret-typed-in-the-browser-not-saved"


def test_send_test_request_from_the_edit_page(logged_in: Page, live_server, handler: HandlerServer):
    """Send test request signs with a typed secret that Save then refuses to apply unasked."""
    with live_server.db():
        webhook = make_webhook(live_server.tenant(), label="Billing hook")
        webhook_id, saved_url = webhook.id, webhook.external_url
    url = handler.behave("/try", body=b'{"handled": "yes"}')
    page = logged_in
    page.goto(f"/webhooks/{webhook_id}/edit")
    page.get_by_label("Endpoint URL").fill(url)
    page.get_by_label("JWT secret").fill(TYPED_SECRET)

    page.get_by_role("button", name="Send test request").click()

    result = page.locator("#test-result")
    expect(result).to_contain_text(re.compile(r"HTTP 200\s+in \d+ ms"))
    expect(result).to_contain_text('{"handled": "yes"}')
    expect(result).to_be_focused()
    expect(page.get_by_role("status").filter(has=result)).to_have_count(1)
    expect(page.get_by_label("Endpoint URL")).to_have_value(url)  # what was typed is still there
    expect(page.get_by_label("JWT secret")).to_have_value(TYPED_SECRET)
    assert_accessible(page, "edit, with a test request's result")
    [sent] = handler.wait_for("/try")
    token = sent.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, TYPED_SECRET, algorithms=["HS256"])["webhook_id"] == webhook_id
    with live_server.db():
        assert db.session.get(Webhook, webhook_id).external_url == saved_url  # nothing saved
        assert db.session.scalars(db.select(Attempt)).all() == []  # nothing recorded
        saved_secret = db.session.get(Webhook, webhook_id).jwt_secret

    # Save with the test's secret still typed: refused at the field, until the box is ticked.
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#jwt_secret-errors")).to_contain_text("the JWT secret was not changed")
    expect(page.get_by_label("JWT secret")).to_have_value(TYPED_SECRET)
    with live_server.db():
        assert db.session.get(Webhook, webhook_id).jwt_secret == saved_secret
    page.get_by_label("Replace the current secret with the one typed above").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Deliveries are now signed with the new JWT secret")).to_be_visible()
    with live_server.db():
        assert db.session.get(Webhook, webhook_id).jwt_secret == TYPED_SECRET


def test_copy_the_handler_code(logged_in: Page, live_server):
    with live_server.db():
        webhook = make_webhook(live_server.tenant(), label="Orders <hook>", http_method="GET",
                               external_url="https://handler.example.com/hooks/orders")  # fmt: skip
        expected = {snippet.key: snippet.code.strip() for snippet in snippets.render(webhook)}
        webhook_id = webhook.id
    page = logged_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"/webhooks/{webhook_id}")
    page.get_by_role("link", name="Handler code").click()
    expect(page).to_have_url(re.compile(rf"/webhooks/{webhook_id}\?tab=handler$"))
    expect(page.get_by_role("heading", name="Handler code", level=2)).to_be_visible()
    for key, title in (("python", "Python (Flask + PyJWT)"), ("node", "Node.js (Express + jsonwebtoken)")):
        snippet = page.locator(".snippet").filter(has=page.locator(f"#snippet-{key}"))
        expect(page.locator(f"#snippet-{key}")).to_contain_text('"/hooks/orders"')
        snippet.get_by_role("button", name=f"Copy the {title} handler").click()
        expect(snippet.locator(".copy-status")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == expected[key]
