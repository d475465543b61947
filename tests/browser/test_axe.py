"""axe-core on every page a person works with: no serious or critical violation.

The checks run in Chromium through ``axe-playwright-python``, which bundles axe-core (nothing is
downloaded). Each details tab is checked, so a tab added later is checked too.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.browser.helpers import QUEUE_TYPE, fill_general, next_step, open_wizard
from tests.conftest import make_webhook
from webhookapp.core import scopes
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt
from webhookapp.webhooks.tabs import TABS

pytestmark = pytest.mark.browser
BLOCKING = {"serious", "critical"}
AXE = Axe()


def assert_accessible(page: Page, what: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    violations = AXE.run(page).response["violations"]
    found = [
        f"{item['id']} ({item['impact']}): {item['help']} at {[node['target'] for node in item['nodes']][:3]}"
        for item in violations
        if item["impact"] in BLOCKING
    ]
    assert not found, f"{what}: " + "; ".join(found)


@pytest.fixture
def hook_with_attempt(live_server) -> tuple[str, int]:
    with live_server.db():
        webhook = make_webhook(live_server.tenant(), label="Billing hook", headers={"X-Api-Key": "abc"}, data={"a": 1})
        row = {
            "webhook_id": webhook.id, "kind": "trigger", "number": 1, "started_at": utcnow(), "duration_ms": 42.0,
            "success": False, "request_method": "POST", "request_url": webhook.external_url,
            "request_headers": {"Authorization": "Bearer x.y.REDACTED"}, "request_body": "{}",
            "response_status": 500, "response_headers": {"Content-Type": "text/plain"},
            "response_body": "boom", "response_truncated": False, "error": None, "redelivery_of": None,
        }  # fmt: skip
        attempt_id = db.session.execute(db.insert(Attempt).returning(Attempt.id), [row]).scalar_one()
        db.session.commit()
        return webhook.id, attempt_id


def test_login_page(page: Page, live_server):
    page.goto("/login")
    assert_accessible(page, "login")
    page.get_by_role("button", name="Log in").click()  # with its errors shown
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "login with errors")


def test_list_details_tabs_attempt_and_tokens(logged_in: Page, hook_with_attempt):
    page = logged_in
    webhook_id, attempt_id = hook_with_attempt
    page.goto("/webhooks")
    assert_accessible(page, "list")
    page.goto("/webhooks?q=nothing-matches")
    assert_accessible(page, "empty search")
    for tab in TABS:
        page.goto(f"/webhooks/{webhook_id}?tab={tab}")
        assert_accessible(page, f"details, {tab} tab")
    page.goto(f"/webhooks/{webhook_id}/attempts/{attempt_id}")
    assert_accessible(page, "attempt")
    page.goto(f"/webhooks/{webhook_id}/edit")
    assert_accessible(page, "edit")
    page.goto("/activity")
    assert_accessible(page, "activity")
    page.goto("/activity?action=token.revoked")
    assert_accessible(page, "activity, nothing matches")
    page.goto("/settings/tokens")
    assert_accessible(page, "tokens")
    for name in scopes.ALL_SCOPES:
        page.locator(f'input[name="scopes"][value="{name}"]').uncheck()
    page.get_by_label("Expires (UTC)").fill("2020-01-01T00:00")
    page.get_by_role("button", name="Create token").click()
    assert_accessible(page, "tokens with errors on the scopes and the expiry")
    page.locator('input[name="scopes"][value="events:write"]').check()
    page.get_by_label("Expires (UTC)").fill("")
    page.get_by_label("Token name").fill("Billing system")
    page.get_by_role("button", name="Create token").click()
    assert_accessible(page, "tokens with a new token")
    page.goto("/settings/security")
    assert_accessible(page, "security")
    page.goto("/settings/security/password")
    page.get_by_role("button", name="Change password").click()  # with its errors shown
    assert_accessible(page, "change password with errors")
    page.goto("/confirm-password")
    assert_accessible(page, "confirm password")


def test_every_wizard_step(logged_in: Page):
    page = logged_in
    open_wizard(page)
    assert_accessible(page, "wizard: General")
    page.get_by_role("button", name="Next", exact=True).click()  # an error on the first step
    assert_accessible(page, "wizard: General with errors")
    fill_general(page, "Orders to ERP", "Pushes changes.", enabled=True)
    assert_accessible(page, "wizard: Product")
    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")
    assert_accessible(page, "wizard: Type")
    page.get_by_role("radio", name=QUEUE_TYPE).check()
    next_step(page, "HTTP Settings")
    assert_accessible(page, "wizard: HTTP Settings")
    page.get_by_label("Endpoint URL").fill("https://erp.example.com/hooks/orders")
    next_step(page, "Additional data")
    assert_accessible(page, "wizard: Additional data")


PHONE = {"width": 390, "height": 844}


def pages_to_check(webhook_id: str, attempt_id: int) -> list[str]:
    return [
        "/webhooks",
        *(f"/webhooks/{webhook_id}?tab={tab}" for tab in TABS),
        f"/webhooks/{webhook_id}/attempts/{attempt_id}",
        f"/webhooks/{webhook_id}/edit",
        f"/webhooks/{webhook_id}/delete",
        "/settings/tokens",
        "/settings/security",
        "/settings/security/password",
        "/settings/security/two-factor",
        "/confirm-password",
        "/activity",
    ]


def assert_no_sideways_scroll(page: Page, what: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{what} scrolls sideways by {overflow} px at 390 px"


def test_every_page_fits_a_phone(browser, live_server, hook_with_attempt):
    webhook_id, attempt_id = hook_with_attempt
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto("/login")
        assert_no_sideways_scroll(page, "login")
        log_in(page)
        for url in pages_to_check(webhook_id, attempt_id):
            page.goto(url)
            assert_no_sideways_scroll(page, url)
        open_wizard(page)
        assert_no_sideways_scroll(page, "wizard: General")
        fill_general(page, "Orders to ERP")
        page.get_by_label("Acme Cloud").check()
        next_step(page, "Type")
        assert_no_sideways_scroll(page, "wizard: Type")
        page.get_by_role("radio", name=QUEUE_TYPE).check()
        next_step(page, "HTTP Settings")
        assert_no_sideways_scroll(page, "wizard: HTTP Settings")
    finally:
        context.close()


def test_the_pages_follow_a_dark_colour_scheme(browser, live_server, hook_with_attempt):
    """With ``prefers-color-scheme: dark`` the pages turn dark, and stay readable (axe's contrast)."""
    webhook_id, attempt_id = hook_with_attempt
    context = browser.new_context(base_url=live_server.url, color_scheme="dark")
    page = context.new_page()
    try:
        log_in(page)
        for url in pages_to_check(webhook_id, attempt_id):
            page.goto(url)
            for selector in ("html", ".card, .login-card, table", "input, select, textarea, button"):
                background = page.evaluate(
                    "s => { const e = document.querySelector(s); return e && getComputedStyle(e).backgroundColor; }",
                    selector,
                )
                if background is None or background == "rgba(0, 0, 0, 0)":  # absent, or see-through
                    continue
                channels = [int(part) for part in background[background.index("(") + 1 : -1].split(",")[:3]]
                assert max(channels) < 90, f"{url}: {selector} is not dark: {background}"
            assert_accessible(page, f"{url} (dark)")
    finally:
        context.close()
