"""The Events tab in a real browser: events posted over HTTP, one delivered by a worker to a real
handler, paged with Older and followed to the attempt that carried them."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.conftest import make_webhook
from tests.engine import api_token, run_worker

pytestmark = pytest.mark.browser


def post_events(live_server, token: str, product_id: str, count: int, prefix: str) -> None:
    for n in range(count):
        answer = requests.post(
            f"{live_server.url}/public/v1/events",
            json={"object_class": "fulfillment_request", "product_id": product_id, "id": f"{prefix}-{n}"},
            headers={"Authorization": f"ApiKey {token}"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text


def test_events_tab_pages_and_links_to_the_carrying_attempt(logged_in: Page, live_server, handler):
    with live_server.db():
        hook = make_webhook(live_server.tenant(), label="Orders", external_url=handler.behave("/orders"))
        hook_id, product_id = hook.id, hook.product_id
        token = api_token(live_server.tenant().account)
    post_events(live_server, token, product_id, 2, "early")
    with live_server.db():
        run_worker(live_server.app)
    handler.wait_for("/orders")
    post_events(live_server, token, product_id, 23, "late")  # no worker runs again: pending

    page = logged_in
    page.goto(f"/webhooks/{hook_id}")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Events").click()
    expect(page).to_have_url(re.compile(rf"/webhooks/{hook_id}\?tab=events$"))
    table = page.locator("#events table")
    expect(table.locator("tbody tr")).to_have_count(20)
    expect(table.locator("tbody tr").first).to_contain_text("late-22")
    expect(table.locator("tbody tr").first).to_contain_text("Pending")
    expect(page.locator("#events .pagination")).to_contain_text("1–20 of 25")

    page.get_by_role("link", name="Older →").click()
    expect(table.locator("tbody tr")).to_have_count(5)
    expect(page.locator("#events .pagination")).to_contain_text("21–25 of 25")
    carried = table.locator("tbody tr", has_text="early-0")
    expect(carried).to_contain_text("attempt 1 of 10")
    carried.get_by_role("link", name=re.compile(r"^AT-\d{3}-\d{3}$")).click()

    expect(page.get_by_role("heading", name="Events carried")).to_be_visible()
    rows = page.locator("#carried tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("early-1")
    expect(rows.nth(1)).to_contain_text("early-0")
