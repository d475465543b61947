"""A failed attempt's page in a real browser: the reason in one sentence, the technical detail
folded away until asked for, wrapped inside its own box."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_webhook
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt

pytestmark = pytest.mark.browser

DETAIL = (
    "ConnectionError: GuardedHTTPPool(host='127.0.0.1', port=8765): Max retries exceeded with url: /webhook "
    "(Caused by NewConnectionError(\"AllowedHTTPConnection(host='127.0.0.1', port=8765): Failed to establish "
    'a new connection: [Errno 111] Connection refused"))'
)


def test_the_technical_detail_is_folded_under_the_sentence(logged_in: Page, live_server):
    url = "http://127.0.0.1:8765/webhook"
    with live_server.db():
        webhook = make_webhook(live_server.tenant(), external_url=url)
        failed = Attempt(webhook_id=webhook.id, number=1, started_at=utcnow(), duration_ms=1.0, success=False,
                         request_method="POST", request_url=url, request_headers={},
                         error="Connection refused by 127.0.0.1:8765", error_detail=DETAIL)  # fmt: skip
        db.session.add(failed)
        db.session.commit()
        webhook_id, failed_id = webhook.id, failed.id
    page = logged_in
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"/webhooks/{webhook_id}/attempts/{failed_id}")
    expect(page.locator(".flash-error")).to_have_text("Connection refused by 127.0.0.1:8765")
    detail = page.locator(".error-detail pre")
    expect(detail).to_be_hidden()
    page.get_by_text("Technical detail").click()
    expect(detail).to_have_text(DETAIL)
    # The long words wrap inside the box rather than widening it.
    assert detail.evaluate("pre => pre.scrollWidth <= pre.clientWidth")
