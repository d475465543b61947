"""Small things a person sees, in one flow: the wizard's step heading takes the focus without a
ring, the list's filters fold on a phone, an open row menu follows the webhook's state, and the
failures filter of the deliveries says what went wrong."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import open_wizard
from tests.conftest import make_webhook
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

pytestmark = pytest.mark.browser
SOON_MS = 6_000  # a live change shows within about two seconds; room for a busy machine
REFUSED = "Connection refused by 127.0.0.1:1"


@pytest.fixture
def broken(live_server) -> str:
    """A webhook Out of order after an attempt that got no answer."""
    with live_server.db():
        webhook = make_webhook(live_server.tenant(), label="Orders", external_url="http://127.0.0.1:1/orders")
        db.session.add(Attempt(webhook_id=webhook.id, number=10, started_at=utcnow(), duration_ms=1.0, success=False,
                               request_method="POST", request_url=webhook.external_url, request_headers={},
                               error=REFUSED))  # fmt: skip
        webhook.out_of_order = True
        db.session.commit()
        return webhook.id


def test_small_things_a_person_sees(logged_in: Page, live_server, broken):
    page = logged_in

    # The wizard's step heading has the focus (for screen readers) but no ring like a text box.
    open_wizard(page)
    heading = page.get_by_role("heading", level=2)
    expect(heading).to_be_focused()
    assert heading.evaluate("h => getComputedStyle(h).outlineStyle") == "none"
    assert heading.evaluate("h => getComputedStyle(h).boxShadow") == "none"

    # The list's filters: shown on a wide screen, folded on a phone until asked for.
    page.goto("/webhooks")
    search = page.get_by_label("Search")
    expect(search).to_be_visible()
    expect(page.locator(".filters-fold > summary")).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 800})
    expect(search).to_be_hidden()
    page.get_by_text("Filters", exact=True).click()
    expect(search).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(search).to_be_visible()

    # An open row menu follows the webhook: Retry now goes once it works again.
    page.get_by_label("Actions for Orders").click()
    menu = page.locator(".menu-items")
    expect(menu.get_by_role("button", name="Retry now")).to_be_visible()
    expect(menu.get_by_role("button", name="Enable")).to_be_visible()
    with live_server.db():
        db.session.get(Webhook, broken).out_of_order = False  # as a successful Retry now leaves it
        db.session.commit()
    expect(menu.get_by_role("button", name="Disable")).to_be_visible(timeout=SOON_MS)
    expect(menu.get_by_role("button", name="Retry now")).to_have_count(0)
    expect(menu).to_be_visible()  # still open

    # The failures filter shows the error, and a status that says what happened.
    page.goto(f"/webhooks/{broken}?tab=deliveries")
    page.get_by_label("Outcome").select_option("failure")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"outcome=failure"))
    table = page.locator("table.deliveries")
    expect(table.get_by_role("columnheader")).to_have_text(
        ["Time", "Attempt", "Method", "Status", "Duration", "Outcome", "Error"]
    )
    expect(table.locator("td[data-label=Status]")).to_have_text(["No answer"])
    expect(table.locator("td[data-label=Error]")).to_have_text([REFUSED])
