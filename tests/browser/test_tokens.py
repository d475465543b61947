"""The API tokens page: create (shown once) and revoke."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

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
