"""Redeliver from an attempt page: the request goes to a real handler and the new attempt's page
says which attempt it sent again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_webhook
from tests.servers import HandlerServer
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt

pytestmark = pytest.mark.browser


def test_redeliver_a_failed_attempt(logged_in: Page, live_server, handler: HandlerServer):
    url = handler.behave("/hook", status=200, body=b'{"handled": true}')
    with live_server.db():
        webhook = make_webhook(live_server.tenant(), label="Billing hook", external_url=url)
        failed = Attempt(webhook_id=webhook.id, number=2, started_at=utcnow(), duration_ms=12.0, success=False,
                         request_method="POST", request_url=url, request_headers={}, response_status=500,
                         response_body='{"error": "db down"}', error="The handler answered HTTP 500.")  # fmt: skip
        db.session.add(failed)
        db.session.commit()
        webhook_id, failed_id = webhook.id, failed.id
    page = logged_in
    page.goto(f"/webhooks/{webhook_id}/attempts/{failed_id}")
    reference = f"AT-{failed_id // 1000:03d}-{failed_id % 1000:03d}"
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Attempt {reference} Failure")
    expect(page.locator(".page-header")).to_contain_text("attempt 2 of 10")

    page.get_by_role("button", name="Redeliver").click()

    expect(page.locator(".flash-success")).to_have_text("Redelivered: the handler answered HTTP 200.")
    expect(page).to_have_url(re.compile(rf"/webhooks/{webhook_id}/attempts/(\d+)$"))
    new_id = int(page.url.rsplit("/", 1)[1])
    assert new_id != failed_id
    new_reference = f"AT-{new_id // 1000:03d}-{new_id % 1000:03d}"
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Attempt {new_reference} Success")
    expect(page.locator(".page-header")).to_contain_text(f"Redelivery of {reference} (attempt 2 of 10)")
    assert len(handler.wait_for("/hook")) == 1

    page.get_by_role("link", name=reference).click()  # back to the attempt it sent again
    expect(page).to_have_url(re.compile(rf"/webhooks/{webhook_id}/attempts/{failed_id}$"))
    expect(page.get_by_text("Redelivery of")).to_have_count(0)

    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name=webhook_id).click()
    expect(page).to_have_url(re.compile(rf"/webhooks/{webhook_id}\?tab=deliveries$"))
    expect(page.locator("td[data-label=Attempt]")).to_have_text([f"{new_reference} Redelivery of {reference}",
                                                                  f"{reference} attempt 2 of 10"])  # fmt: skip
