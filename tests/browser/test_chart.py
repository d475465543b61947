"""The Statistics tab's chart in a real browser: drawn by the server (no script), one bar per
hour, the 7-day link, and the table behind it that a screen reader reaches."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_axe import assert_accessible
from tests.conftest import make_webhook
from webhookapp.core.times import utcnow
from webhookapp.engine.maintenance import hourly
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt

pytestmark = pytest.mark.browser


@pytest.fixture
def busy_hook(live_server) -> str:
    """A webhook with attempts 3 hours ago (4 successes, 1 failure), 3 days ago and now."""
    with live_server.db():
        webhook = make_webhook(live_server.tenant(), label="Busy hook")
        this_hour = hourly.floor_hour(utcnow())
        moments = [(this_hour - 3 * hourly.HOUR, n != 0, 40.0 + n * 10) for n in range(5)]
        moments += [(this_hour - 72 * hourly.HOUR, True, 900.0), (this_hour, True, 25.0)]
        db.session.add_all(
            Attempt(webhook_id=webhook.id, started_at=at + timedelta(seconds=n), duration_ms=ms, success=ok,
                    request_method="POST", request_url=webhook.external_url, request_headers={})
            for n, (at, ok, ms) in enumerate(moments)
        )  # fmt: skip
        db.session.commit()
        return webhook.id


def test_the_chart_renders_switches_to_seven_days_and_has_a_table(logged_in: Page, busy_hook: str):
    page = logged_in
    page.goto(f"/webhooks/{busy_hook}")
    chart = page.get_by_role("img", name=re.compile(r"^Deliveries per hour and response times, last 24 hours"))
    expect(chart).to_be_visible()
    expect(page.locator("#chart .chart-hour")).to_have_count(24)
    expect(page.locator("#chart rect.chart-ok")).to_have_count(2)  # 3 hours ago and now
    expect(page.locator("#chart rect.chart-bad")).to_have_count(1)
    expect(page.locator("#chart rect.chart-ok").first).to_be_visible()
    expect(page.locator("#chart path.chart-p50")).to_have_attribute("d", re.compile(r"^M"))
    assert (chart.bounding_box() or {}).get("width", 0) > 600  # scales to the card

    table = page.get_by_role("table", name=re.compile("Delivery attempts per hour"))
    expect(table).to_be_hidden()
    page.get_by_text("Show as table").click()
    expect(table).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(1 + 24 + 1)  # header, hours, total
    total = table.get_by_role("row", name=re.compile("^Total"))
    expect(total.get_by_role("cell")).to_have_text(["5", "1", re.compile(" ms$"), re.compile(" ms$")])
    assert_accessible(page, "statistics tab, 24 hours")

    page.get_by_role("link", name="Last 7 days").click()
    expect(page).to_have_url(re.compile(rf"/webhooks/{busy_hook}\?tab=statistics&span=7d$"))
    expect(page.get_by_role("img", name=re.compile("last 7 days"))).to_be_visible()
    expect(page.locator("#chart .chart-hour")).to_have_count(168)
    expect(page.locator("#chart rect.chart-ok")).to_have_count(3)
    expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current", "page")
    page.get_by_text("Show as table").click()
    expect(page.get_by_role("table").get_by_role("row")).to_have_count(1 + 168 + 1)
    assert_accessible(page, "statistics tab, 7 days")


def test_an_empty_window_says_so(logged_in: Page, live_server):
    with live_server.db():
        webhook_id = make_webhook(live_server.tenant(), label="Quiet hook").id
    page = logged_in
    page.goto(f"/webhooks/{webhook_id}?tab=statistics&span=7d")
    expect(page.locator("#chart")).to_contain_text("No delivery attempts in the last 7 days.")
    expect(page.locator("#chart svg")).to_have_count(0)
