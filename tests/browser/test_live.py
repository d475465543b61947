"""Live pages in a real browser (docs/architecture.md, "Live pages"): the details page and the list
follow what a real worker delivers to a real handler without a reload, an attempt in flight shows
as Sending…, and with JavaScript off the page stays as it was until reloaded."""

from __future__ import annotations

import re
import threading
import time

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_webhook
from tests.engine import api_token, run_worker
from webhookapp.engine import delivery, runtime
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

pytestmark = pytest.mark.browser
SOON_MS = 6_000  # a change shows within about two seconds; room for a busy machine


@pytest.fixture
def hook(live_server, handler) -> str:
    with live_server.db():
        return make_webhook(live_server.tenant(), label="Orders", external_url=handler.behave("/orders")).id


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page's scripts log (a refused policy, a failed script) while the test runs."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def post_event(live_server) -> None:
    """An event for the seeded vendor's first product, through the API, as a handler's platform would."""
    with live_server.db():
        token = api_token(live_server.tenant().account)
    body = {"object_class": "fulfillment_request", "product_id": live_server.vendor.plain_product_id}
    response = live_server.app.test_client().post(
        "/public/v1/events", json=body, headers={"Authorization": f"ApiKey {token}"}
    )
    assert response.status_code == 202, response.get_data(as_text=True)


def deliver(live_server) -> None:
    """Run the queued delivery jobs in this thread with a real RQ worker."""
    with live_server.db():
        run_worker(live_server.app)


def mark_page(page: Page) -> None:
    """A mark that a reload would wipe: the changes must come without one."""
    page.evaluate("window.notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return page.evaluate("window.notReloaded === true")


def test_the_details_page_follows_a_delivery_without_a_reload(logged_in: Page, live_server, handler, hook,
                                                              console_errors):  # fmt: skip
    page = logged_in
    page.goto(f"/webhooks/{hook}")
    figures = page.locator("#statistics .stats")
    expect(figures.locator("div").filter(has_text="Events")).to_have_text(re.compile(r"Events\s*0"))
    expect(page.locator("#chart")).to_contain_text("No delivery attempts in the last 24 hours.")
    mark_page(page)

    post_event(live_server)
    deliver(live_server)
    handler.wait_for("/orders")
    figure = figures.locator("div")
    expect(figure.filter(has_text="Events")).to_have_text(re.compile(r"Events\s*1"), timeout=SOON_MS)
    expect(figure.filter(has_text="Success responses")).to_have_text(re.compile(r"Success responses\s*1"))
    last_success = page.locator("#statistics dl.properties div").filter(has_text="Last success")
    expect(last_success.get_by_role("link")).to_be_visible()
    expect(last_success).to_contain_text("HTTP 200")
    # The chart's hour now running follows the tiles: its bar (the last) and its row in the table.
    now_bar = page.locator("#chart .chart-hour").last
    expect(now_bar.locator("title")).to_contain_text(": 1 succeeded, 0 failed")
    expect(now_bar.locator("rect.chart-ok")).to_have_count(1)
    post_event(live_server)
    deliver(live_server)
    handler.wait_for("/orders", 2)
    expect(figure.filter(has_text="Triggers")).to_have_text(re.compile(r"Triggers\s*2"), timeout=SOON_MS)
    expect(now_bar.locator("title")).to_contain_text(": 2 succeeded, 0 failed")
    page.get_by_text("Show as table").click()
    expect(page.locator("#chart tbody tr").last.get_by_role("cell")).to_have_text(["2", "0", re.compile("ms$"),
                                                                                    re.compile("ms$")])  # fmt: skip
    assert not_reloaded(page)

    page.get_by_role("link", name="Deliveries").click()
    rows = page.locator("#deliveries tbody tr")
    expect(rows).to_have_count(2)
    mark_page(page)
    post_event(live_server)
    deliver(live_server)
    handler.wait_for("/orders", 3)
    expect(rows).to_have_count(3, timeout=SOON_MS)  # the newest delivery came in on top
    expect(rows.first).to_contain_text("Success")
    assert not_reloaded(page) and console_errors == []


def test_a_failure_turns_the_status_and_says_so(logged_in: Page, live_server, handler, hook, console_errors):
    live_server.app.config.update(WEBHOOK_RETRY_BASE=3600)
    handler.behave("/orders", status=503)
    page = logged_in
    page.goto(f"/webhooks/{hook}")
    expect(page.locator("h1 .badge")).to_have_text("Enabled")
    expect(page.get_by_role("button", name="Retry now")).to_have_count(0)
    mark_page(page)

    post_event(live_server)
    deliver(live_server)
    expect(page.locator("h1 .badge")).to_have_text("Failing", timeout=SOON_MS)
    expect(page.locator("[data-live=status] dd")).to_contain_text("Failing: attempt 2 of 10 at")
    expect(page.get_by_role("button", name="Retry now")).to_be_visible()  # and it works, as a plain form
    expect(page.locator("[data-live-announcer]")).to_have_text("Status: Failing")  # said once, politely
    assert not_reloaded(page)
    page.get_by_role("button", name="Retry now").click()
    expect(page.locator(".flash-success")).to_contain_text("Retrying “Orders” now.")
    assert console_errors == []


def test_an_attempt_in_flight_shows_as_sending(logged_in: Page, live_server, handler, hook, console_errors):
    handler.behave("/orders", delay=4)
    page = logged_in
    page.goto(f"/webhooks/{hook}?tab=deliveries")
    expect(page.locator("#deliveries")).to_contain_text("No deliveries yet.")
    post_event(live_server)

    def job() -> None:  # the delivery job's loop, in a thread (RQ's worker wants the main one)
        with live_server.db():
            delivery.drain(runtime.current(), budget=8)

    worker = threading.Thread(target=job)
    worker.start()
    try:
        handler.wait_for("/orders")
        status = page.locator("[data-live=status] dd")
        expect(status).to_contain_text("Sending…", timeout=SOON_MS)
        expect(status).to_contain_text("attempt 1 of 10")
        sending = page.locator("#deliveries tbody tr.sending-row")
        expect(sending).to_contain_text("attempt 1 of 10")
        expect(sending).to_contain_text("Sending…")
        elapsed = sending.locator(".elapsed")
        first = elapsed.inner_text()
        expect(elapsed).not_to_have_text(first, timeout=2_500)  # the seconds run on between polls
        assert re.fullmatch(r"\d+ s", elapsed.inner_text())
    finally:
        worker.join(20)
    expect(page.locator("#deliveries tbody tr.sending-row")).to_have_count(0, timeout=SOON_MS)
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    expect(page.locator("#deliveries tbody tr").first).to_contain_text("Success")
    expect(status).not_to_contain_text("Sending")
    assert console_errors == []


def test_the_list_status_and_health_follow_and_an_open_menu_stays_open(logged_in: Page, live_server, handler, hook,
                                                                        console_errors):  # fmt: skip
    live_server.app.config.update(WEBHOOK_RETRY_BASE=3600)
    handler.behave("/orders", status=500)
    with live_server.db():
        other = make_webhook(live_server.tenant(), label="Quiet", product_id=live_server.vendor.dynamic_product_id).id
    page = logged_in
    page.goto("/webhooks")
    row = page.locator("tr").filter(has_text="Orders")
    expect(row.locator("td[data-label=Status]")).to_contain_text("Enabled")
    expect(row.locator("td[data-label='Success, 24 h']")).to_have_text("—")
    quiet_menu = page.locator("tr").filter(has_text="Quiet").locator("details.menu")
    quiet_menu.locator("summary").click()
    expect(quiet_menu).to_have_attribute("open", "")
    mark_page(page)

    post_event(live_server)
    deliver(live_server)
    expect(row.locator("td[data-label=Status]")).to_contain_text("Failing", timeout=SOON_MS)
    expect(row.locator("td[data-label=Status]")).to_contain_text("attempt 2 of 10 at")
    expect(row.locator("td[data-label='Success, 24 h']")).to_contain_text("0 %")
    expect(page.locator("[data-live-announcer]")).to_have_text("Orders: Failing")
    expect(quiet_menu).to_have_attribute("open", "")  # the person's open menu was left alone
    assert not_reloaded(page) and other and console_errors == []


def failed_with(live_server, hook: str, status: int) -> None:
    """Out of order after an answer of ``status`` (set in the database, as the engine would)."""
    with live_server.db():
        webhook = db.session.get(Webhook, hook)
        webhook.out_of_order = True
        webhook.last_failure_info = {"status": status, "duration_ms": 3.0}
        db.session.commit()


def test_a_region_holding_the_focus_waits_until_the_focus_leaves(logged_in: Page, live_server, hook):
    failed_with(live_server, hook, 502)
    page = logged_in
    page.goto(f"/webhooks/{hook}")
    banner = page.locator("[data-live=banner]")
    expect(banner).to_contain_text("got HTTP 502")
    enable = banner.get_by_role("button", name="Enable")
    enable.focus()
    page.evaluate("document.activeElement.dataset.mine = 'yes'")

    failed_with(live_server, hook, 504)
    time.sleep(3.5)  # polls pass: the banner changed, but the person is on its button
    assert page.evaluate("document.activeElement.dataset.mine") == "yes"
    expect(banner).to_contain_text("got HTTP 502")
    page.evaluate("document.activeElement.blur()")
    expect(banner).to_contain_text("got HTTP 504", timeout=SOON_MS)



def test_without_javascript_the_page_is_unchanged_until_reloaded(no_js_page: Page, live_server, handler, hook):
    page = no_js_page
    page.goto(f"/webhooks/{hook}")
    events = page.locator("#statistics .stats div").filter(has_text="Events")
    expect(events).to_have_text(re.compile(r"Events\s*0"))
    post_event(live_server)
    deliver(live_server)
    handler.wait_for("/orders")
    time.sleep(3)  # longer than a poll would take
    expect(events).to_have_text(re.compile(r"Events\s*0"))
    page.reload()
    expect(events).to_have_text(re.compile(r"Events\s*1"))
    expect(page.locator("#statistics .stats div").filter(has_text="Success responses")).to_have_text(
        re.compile(r"Success responses\s*1")
    )
