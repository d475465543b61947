"""Recover on the Deliveries tab in a real browser (docs/architecture.md, "Recover"): the form
starts a recovery, its progress fills up without a reload as a real worker sends, and Cancel
stops the next one."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_live import SOON_MS, mark_page, not_reloaded
from tests.conftest import make_webhook
from tests.engine import run_worker
from tests.http.test_recover import HISTORY, seed

pytestmark = pytest.mark.browser


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page's scripts log while the test runs."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_a_recovery_fills_up_live_and_a_second_is_cancelled(logged_in: Page, live_server, handler, console_errors):
    live_server.app.config.update(WEBHOOK_RECOVER_RATE=1000)
    with live_server.db():
        hook = make_webhook(live_server.tenant(), label="Orders", external_url=handler.behave("/orders")).id
        seed(hook, HISTORY)
    page = logged_in
    page.goto(f"/webhooks/{hook}?tab=deliveries")
    page.get_by_label("From").fill("2026-11-01T12:05:00")
    page.get_by_label("Until").fill("2026-11-01T13:00:00")
    page.get_by_role("button", name="Recover", exact=True).click()
    expect(page.locator(".flashes")).to_contain_text("Recovering 3 failed deliveries")
    progress = page.locator("[data-live=recovery]")
    expect(progress).to_contain_text("0 of 3 sent")
    mark_page(page)

    with live_server.db():
        run_worker(live_server.app)
    handler.wait_for("/orders", 3)
    expect(progress).to_contain_text("3 of 3 sent", timeout=SOON_MS)
    expect(progress).to_contain_text("Recovered")
    expect(page.locator("#deliveries tbody tr")).to_have_count(3 + len(HISTORY), timeout=SOON_MS)
    assert not_reloaded(page)

    page.get_by_label("From").fill("2026-11-01T12:00:00")
    page.get_by_role("button", name="Recover", exact=True).click()
    page.get_by_role("button", name="Cancel recovery").click()
    expect(progress).to_contain_text("Recovery cancelled")
    assert console_errors == []
