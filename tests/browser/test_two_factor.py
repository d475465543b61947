"""Two-factor login in a real browser: enrol on the Security page from the key shown as text,
keep the recovery codes, log out, log in with the password and a code (docs/security.md,
"Two-factor login"). The pages are checked with axe on the way."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_axe import assert_accessible
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_enrol_then_log_in_with_a_code(logged_in: Page):
    page = logged_in
    page.get_by_role("link", name="Security").click()
    page.get_by_role("link", name="Set up two-factor login").click()
    expect(page.get_by_role("heading", name="Set up two-factor login")).to_be_visible()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    expect(qr).to_be_visible()
    assert qr.evaluate("image => image.complete && image.naturalWidth > 0")  # the data: URI renders under the CSP
    assert_accessible(page, "two-factor enrolment")
    seed = page.locator("#totp-key").inner_text().strip()
    totp = pyotp.TOTP(seed)
    page.get_by_label("Code from the app").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-factor login").click()
    expect(page.locator(".field-errors")).to_contain_text("not the app's current code")
    assert_accessible(page, "two-factor enrolment with an error")
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor login").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    assert_accessible(page, "recovery codes")
    page.get_by_role("link", name="I have kept them").click()
    expect(page.get_by_text("Recovery codes left: 10")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Email").fill("alice@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Two-factor login")).to_be_visible()
    assert_accessible(page, "two-factor login step")
    page.get_by_label("Code").fill(totp.at(time.time() + 30))  # the enrolment spent this step's code
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/webhooks")
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()


def test_an_idle_details_page_says_its_session_ended(logged_in: Page, live_server):
    """The page keeps polling, which is not activity: once idle, it says so and links to the login."""
    from tests.conftest import make_webhook

    with live_server.db():
        webhook_id = make_webhook(live_server.tenant(), label="Idle hook").id
    page = logged_in
    page.goto(f"/webhooks/{webhook_id}")
    live_server.app.config["SESSION_IDLE_TIMEOUT"] = 1.0
    note = page.locator("[data-session-ended]")
    expect(note).to_contain_text("Your session ended after 1 second without activity.", timeout=10_000)
    expect(note.get_by_role("link", name="Log in")).to_have_attribute(
        "href", f"/login?next={'%2Fwebhooks%2F' + webhook_id}"
    )
    page.reload()
    expect(page).to_have_url(re.compile(r"/login\?next="))
