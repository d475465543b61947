"""No text a person or a handler controls widens a page: with the longest values the rules allow
(name, description, URL, headers, data, an event's ids, a handler's error and answer), every page
fits a 1,280 px window and a 390 px phone; long words wrap or scroll inside their own box."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.browser.helpers import QUEUE_TYPE, fill_general, next_step, open_wizard
from tests.servers import free_port
from webhookapp.core import rules
from webhookapp.core.times import utcnow
from webhookapp.engine import ingest, matches
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Event, Webhook
from webhookapp.services import tokens

pytestmark = pytest.mark.browser
WIDTHS = (1280, 390)


def word(prefix: str, length: int, letter: str = "x") -> str:
    """One unbroken word of ``length`` characters."""
    return prefix + letter * (length - len(prefix))


# The longest unbroken values the rules allow.
NAME = word("Orders", rules.LABEL_MAX)
DESCRIPTION = word("About", rules.DESCRIPTION_MAX)
HEADER_NAME = word("X-", rules.HEADER_NAME_MAX, "h")
HEADER_VALUE = word("v", rules.HEADER_VALUE_MAX, "v")
ERROR = word("Connection failed: ", 2000, "E")  # what a transport error may say, in one word


# The page's width, and the elements that stick out (to name them when it is too wide).
MEASURE = """() => {
  const width = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().replace(/\\s+/g, ".") : "");
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0) { wide.push(name(el) + " " + Math.round(box.right)); }
  }
  return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide.slice(-5)};
}"""


class Widths:
    """Measures pages at each width (without a reload) and keeps the ones wider than the window."""

    def __init__(self, page: Page):
        self.page = page
        self.too_wide: list[str] = []

    def check(self, where: str) -> None:
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 800})
            measured = self.page.evaluate(MEASURE)
            if measured["scroll"] > measured["inner"]:
                self.too_wide.append(f"{where} at {width} px is {measured['scroll']} px wide: {measured['wide']}")
        self.page.set_viewport_size({"width": WIDTHS[0], "height": 800})

    def visit(self, path: str) -> None:
        self.page.goto(path)
        self.check(path)


def long_url(port: int) -> str:
    return word(f"http://127.0.0.1:{port}/", rules.URL_MAX, "u")


def make_failure(live_server, webhook_id: str, url: str) -> int:
    """A failed attempt that got no answer, and one answered with a long body, as recorded; the
    webhook Out of order after it; an event with the longest ids, matched by the webhook."""
    with live_server.db():
        webhook = db.session.get(Webhook, webhook_id)
        now = utcnow()
        headers = {"Authorization": "Bearer " + word("e", 600, "J"), HEADER_NAME: HEADER_VALUE}
        refused = Attempt(webhook_id=webhook_id, number=3, started_at=now, duration_ms=2.5, success=False,
                          request_method="POST", request_url=url, request_headers=headers,
                          request_body='{"data": "' + word("d", 3000) + '"}', error=ERROR)  # fmt: skip
        answered = Attempt(webhook_id=webhook_id, number=2, started_at=now, duration_ms=20.0, success=False,
                           request_method="POST", request_url=url, request_headers=headers, response_status=500,
                           response_headers={HEADER_NAME: HEADER_VALUE}, response_body=word("b", 5000),
                           error="The handler answered HTTP 500.")  # fmt: skip
        db.session.add_all([refused, answered])
        db.session.flush()
        webhook.out_of_order = True
        webhook.failure_count = webhook.failures_since_last_success = 3
        webhook.last_failure_at = now
        webhook.last_failure_info = {"status": None, "duration_ms": 2.5, "excerpt": word("b", 300),
                                     "error": ERROR, "attempt_id": refused.id}  # fmt: skip
        event = Event(id="EV-000-000-001", account_id=webhook.account_id, client_event_id=word("c", ingest.ID_MAX),
                      object_class="fulfillment_request", product_id=webhook.product_id,
                      object_id=word("o", ingest.ID_MAX), api_url=word("https://api.example/", rules.URL_MAX, "a"),
                      webhook_ids=[webhook_id], match_set_id=matches.set_for([webhook_id]),
                      created_at=now)  # fmt: skip
        db.session.add(event)
        tokens.create_token(webhook.account, word("Token", tokens.NAME_MAX))
        db.session.commit()
        return refused.id


def test_no_page_is_wider_than_the_window_with_the_longest_values(page: Page, live_server):
    with live_server.db():  # an admin (one more link in the top bar) of an account with a long name
        tenant = live_server.tenant()
        tenant.user.is_admin = True
        tenant.account.name = word("Acme", 100)
        db.session.commit()
    widths = Widths(page)
    fits, visit = widths.check, widths.visit
    visit("/login")
    log_in(page)
    refused_port = free_port()  # nothing listens there: Send test request fails at once
    url = long_url(refused_port)

    # The wizard, step by step, with the longest values and a failed Send test request.
    open_wizard(page)
    fits("wizard: General")
    fill_general(page, NAME, DESCRIPTION, enabled=True)
    fits("wizard: Product")
    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")
    fits("wizard: Type")
    page.get_by_role("radio", name=QUEUE_TYPE).check()
    next_step(page, "HTTP Settings")
    page.get_by_label("Endpoint URL").fill(url)
    page.get_by_label("Header name").fill(HEADER_NAME)
    page.get_by_label("Header value").fill(HEADER_VALUE)
    page.get_by_role("button", name="Send test request").click()
    expect(page.locator(".test-result")).to_be_visible()
    fits("wizard: HTTP Settings with a failed test")
    next_step(page, "Additional data")
    page.get_by_label("Additional data").fill('{"' + word("k", 200) + '": "' + word("v", 5000) + '"}')
    fits("wizard: Additional data")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/webhooks/WH-[\d-]+$"))
    webhook_id = page.url.rsplit("/", 1)[1]

    attempt_id = make_failure(live_server, webhook_id, url)
    visit("/webhooks")
    page.get_by_label(f"Actions for {NAME}").click()  # the row menu, open
    fits("/webhooks with the row menu open")
    for tab in ("statistics", "deliveries", "events", "http", "data", "handler", "activity"):
        visit(f"/webhooks/{webhook_id}?tab={tab}")
    visit(f"/webhooks/{webhook_id}?tab=deliveries&outcome=failure")
    visit(f"/webhooks/{webhook_id}?tab=http&reveal=secret")
    visit(f"/webhooks/{webhook_id}/attempts/{attempt_id}")
    visit(f"/webhooks/{webhook_id}/attempts/{attempt_id + 1}")
    visit(f"/webhooks/{webhook_id}/edit")
    page.get_by_role("button", name="Send test request").click()
    expect(page.locator(".test-result")).to_be_visible()
    fits("edit with a failed test")
    visit(f"/webhooks/{webhook_id}/delete")
    visit("/activity")
    visit(f"/activity?object={webhook_id}")
    visit("/settings/tokens")
    visit("/settings/security")
    visit("/webhooks?q=" + word("q", 100))
    assert not widths.too_wide, "\n".join(widths.too_wide)
