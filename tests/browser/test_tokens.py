"""The API tokens page: create (shown once) and revoke."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select

from webhookapp.core import scopes
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken

pytestmark = pytest.mark.browser


def test_create_and_revoke_token(logged_in: Page, live_server):
    page = logged_in
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    expect(page.get_by_text("No tokens yet.")).to_be_visible()

    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#name-errors")).to_contain_text("Give the token a name")

    page.get_by_label("Token name").fill("Billing system")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".flash-success")).to_contain_text("Token “Billing system” created.")
    new_token = page.locator("#new-token")
    expect(new_token).to_have_text(re.compile(r"^whk_[A-Za-z0-9_-]{40,}$"))
    plain = new_token.inner_text()
    expect(page.locator(".card-highlight").get_by_role("button", name="Copy")).to_be_visible()
    row = page.locator("tbody tr", has_text="Billing system")
    expect(row).to_contain_text(plain[:10] + "…")
    expect(row.locator(".badge")).to_have_text("Active")
    expect(page.get_by_label("Token name")).to_have_value("")

    with live_server.db():
        token = db.session.scalars(select(ApiToken)).one()
        assert token.token_hash == hashlib.sha256(plain.encode()).hexdigest()
        assert token.account_id == live_server.vendor.account_id
        assert token.revoked_at is None

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page.locator("#new-token")).to_have_count(0)
    assert plain not in page.content()

    row.get_by_role("link", name="Revoke Billing system").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke token?")
    page.get_by_role("link", name="Cancel").click()  # asked first: cancelling changes nothing
    expect(row.locator(".badge")).to_have_text("Active")
    row.get_by_role("link", name="Revoke Billing system").click()
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash-success")).to_have_text("Token “Billing system” revoked.")
    expect(row.locator(".badge")).to_have_text("Revoked")
    expect(row.get_by_role("link", name="Revoke Billing system")).to_have_count(0)
    with live_server.db():
        assert db.session.scalars(select(ApiToken)).one().revoked_at is not None


def test_scopes_expiry_and_last_use_on_the_page(logged_in: Page, live_server):
    """Scopes chosen with the checkboxes (all checked at first), an expiry date, the last use with
    its address, and a token past its expiry shown as expired."""
    page = logged_in
    page.goto("/settings/tokens")
    boxes = page.get_by_role("group", name="Scopes").get_by_role("checkbox")
    expect(boxes).to_have_count(len(scopes.ALL_SCOPES))
    for index in range(len(scopes.ALL_SCOPES)):
        expect(boxes.nth(index)).to_be_checked()
    for index in range(len(scopes.ALL_SCOPES)):
        boxes.nth(index).uncheck()
    page.get_by_label("Token name").fill("Poster")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#scopes-errors")).to_have_text("Choose at least one scope: what the token may do.")
    expect(page.get_by_role("group", name="Scopes")).to_have_attribute("aria-describedby", "scopes-hint scopes-errors")

    page.locator('input[name="scopes"][value="events:write"]').check()
    page.get_by_label("Expires (UTC)").fill("2020-01-01T00:00")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#expires_at-errors")).to_contain_text("Choose a time in the future")
    expect(page.locator('input[name="scopes"][value="events:write"]')).to_be_checked()  # kept as chosen
    expect(page.locator('input[name="scopes"][value="webhooks:read"]')).not_to_be_checked()

    later = (utcnow() + timedelta(days=30)).replace(second=0, microsecond=0)
    page.get_by_label("Expires (UTC)").fill(later.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Create token").click()
    plain = page.locator("#new-token").inner_text()
    row = page.locator("tbody tr", has_text="Poster")
    expect(row.locator('[data-label="Scopes"]')).to_have_text("events:write")
    expect(row.locator('[data-label="Expires"]')).to_have_text(f"{later:%Y-%m-%d %H:%M} UTC")
    expect(row.locator('[data-label="Last used"]')).to_have_text("Never")

    used = requests.get(f"{live_server.url}/public/v1/notifications/webhooks",
                        headers={"Authorization": f"ApiKey {plain}"}, timeout=10)  # fmt: skip
    assert used.status_code == 403 and used.json()["errors"] == ["This token lacks the scope webhooks:read."]
    posted = requests.post(f"{live_server.url}/public/v1/events", json={"object_class": "listing_request",
                           "product_id": "PRD-000-000-000"}, headers={"Authorization": f"ApiKey {plain}"},
                           timeout=10)  # fmt: skip
    assert posted.status_code == 404  # let in: the product is unknown
    page.reload()
    expect(row.locator('[data-label="Last used"]')).to_contain_text("from 127.0.0.1")

    with live_server.db():
        token = db.session.scalars(select(ApiToken).where(ApiToken.name == "Poster")).one()
        token.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    page.reload()
    expect(row.locator(".badge")).to_have_text("Expired")
    headers = {"Authorization": f"ApiKey {plain}"}
    refused = requests.post(f"{live_server.url}/public/v1/events", json={}, headers=headers, timeout=10)
    assert refused.status_code == 401 and refused.json()["errors"][0].startswith("This token expired on ")
