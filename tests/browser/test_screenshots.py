"""The README's screenshots, taken at 1280×800 from a database with plausible content.

``pytest tests/browser -k screenshots --screenshots`` (``make screenshots``) writes them to docs/;
without ``--screenshots`` they go to a temporary folder, so the test still runs every time.
"""

from __future__ import annotations

import json
import struct
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.browser.helpers import QUEUE_TYPE, fill_general, next_step, open_wizard
from tests.conftest import make_webhook
from webhookapp.core.times import utcnow
from webhookapp.engine import matches
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Event
from webhookapp.services import tokens

pytestmark = pytest.mark.browser

FILES = (
    "list.png", "wizard-type.png", "wizard-http.png", "details.png", "deliveries.png", "events.png",
    "handler.png", "attempt.png", "tokens.png", "phone-dark.png",
)  # fmt: skip
FULL_PAGE = {"details.png", "attempt.png", "handler.png"}
JWT_SHOWN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ3ZWJob29rX2lkIjoiV0gtNTc4LTQyNy03NjUiLCJleHAiOjE3OTU0NDM5NzJ9.REDACTED"
)


def add_attempts(hook, now) -> int:
    """Six recorded deliveries, one of them a 503; returns the newest success's id."""
    body = {"webhook_id": hook.id, "webhook_name": hook.label, "object_class": hook.object_class}
    newest_success = 0
    for minutes, status in ((4, 200), (31, 200), (58, 200), (95, 200), (97, 503), (140, 200)):
        started = now - timedelta(minutes=minutes)
        attempt = Attempt(
            webhook_id=hook.id, kind="trigger", number=2 if minutes == 95 else 1, started_at=started,
            duration_ms=41.0 + minutes % 17, success=status == 200, request_method="POST",
            request_url=hook.external_url,
            request_headers={"X-Api-Key": "erp-4f9c21", "User-Agent": "webhookapp/0.1.0",
                             "Authorization": f"Bearer {JWT_SHOWN}", "Content-Type": "application/json"},
            request_body=json.dumps({**body, "triggered_at": started.isoformat(timespec="seconds")}),
            response_status=status, response_headers={"Content-Type": "application/json"},
            response_body='{"accepted": true, "queued": 3}' if status == 200 else '{"error": "ERP maintenance"}',
            error=None if status == 200 else "The handler answered HTTP 503.",
        )  # fmt: skip
        db.session.add(attempt)
        db.session.flush()
        if status == 200 and not newest_success:
            newest_success = attempt.id
            hook.last_success_info = {"attempt_id": attempt.id, "status": 200, "duration_ms": attempt.duration_ms,
                                      "excerpt": attempt.response_body, "error": None}  # fmt: skip
        elif status != 200:
            hook.last_failure_at = started
            hook.last_failure_info = {"attempt_id": attempt.id, "status": 503, "duration_ms": attempt.duration_ms,
                                      "excerpt": attempt.response_body, "error": attempt.error}  # fmt: skip
    return newest_success


def add_history(hook, now) -> None:
    """A day of earlier deliveries for the chart: a few an hour, a bad spell in the afternoon."""
    for hours_ago in range(3, 24):
        for n in range(2 + hours_ago % 4):
            started = now - timedelta(hours=hours_ago, minutes=7 + 13 * n)
            failed = 14 <= hours_ago <= 15 and n % 2 == 0
            db.session.add(Attempt(
                webhook_id=hook.id, kind="trigger", number=1, started_at=started,
                duration_ms=(2900.0 if failed else 38.0 + (hours_ago * 7 + n * 29) % 160), success=not failed,
                request_method="POST", request_url=hook.external_url, request_headers={}, request_body="{}",
                response_status=504 if failed else 200, response_headers={}, response_body="",
                error="The handler answered HTTP 504." if failed else None,
            ))  # fmt: skip


def add_events(hook, now) -> None:
    """Events that matched the webhook, the newest still waiting for its trigger."""
    orders = ((1, "1196"), (4, "1193"), (5, "1190"), (31, "1184"), (58, "1171"), (96, "1160"))
    match_set_id = matches.set_for([hook.id])
    for minutes, number in orders:
        order = f"PR-8841-2207-{number}"
        db.session.add(Event(
            id=f"EV-{order[3:]}", account_id=hook.account_id, client_event_id=f"erp-{order[-4:]}",
            object_class=hook.object_class, product_id=hook.product_id, object_id=order,
            api_url="https://connect.example/public/v1/", webhook_ids=[hook.id], match_set_id=match_set_id,
            created_at=now - timedelta(minutes=minutes, seconds=20),
        ))  # fmt: skip


def seed(live_server) -> tuple[str, int]:
    """Five webhooks (enabled, disabled, out of order, one with statistics and deliveries);
    returns that one's id and the id of its newest successful attempt."""
    now = utcnow()
    with live_server.db():
        tenant = live_server.tenant()
        dynamic = tenant.products[1]
        hooks = [
            make_webhook(tenant, label="Usage files to billing", type_key="usage_file.event", active=False),
            make_webhook(
                tenant, label="Tier config sync", type_key="tier_config_request.event", http_method="GET", data={}
            ),
            make_webhook(
                tenant,
                label="Draft change validator",
                product_id=dynamic.id,
                type_key="fulfillment_request.change_validator",
                external_url="https://validator.acme.example/draft-change",
            ),
            make_webhook(tenant, label="Listing requests to Slack", type_key="listing_request.event"),
            make_webhook(
                tenant,
                label="Orders to ERP",
                description="Sends every change in the fulfillment queue of Acme Cloud to the ERP.",
                external_url="https://erp.acme.example/connect/fulfillment",
                headers={"X-Api-Key": "erp-4f9c21", "X-Tenant": "acme-eu"},
                data={"source": "connect", "region": "eu-west", "priority": "high"},
            ),
        ]
        for age, hook in zip((26, 19, 11, 4, 1), hooks, strict=True):
            hook.created_at = hook.modified_at = now - timedelta(days=age, hours=age % 5, minutes=7 * age)
        broken, stats = hooks[1], hooks[-1]
        broken.out_of_order = True
        broken.events_count, broken.triggers_count, broken.failure_count = 57, 122, 65
        broken.failures_since_last_success = 10
        broken.last_failure_at = now - timedelta(hours=3)
        stats.events_count, stats.triggers_count = 1284, 1311
        stats.success_count, stats.failure_count, stats.failures_since_last_success = 1290, 21, 0
        stats.last_event_at = now - timedelta(minutes=4)
        stats.last_success_at = now - timedelta(minutes=4)
        stats.last_failure_at = now - timedelta(days=2, hours=5)
        stats.modified_at = now - timedelta(hours=20)
        attempt_id = add_attempts(stats, now)
        add_history(stats, now)
        add_events(stats, now)
        old, _ = tokens.create_token(tenant.account, "Staging importer")
        old.created_at = now - timedelta(days=40)
        old.last_used_at = now - timedelta(days=12)
        old.revoked_at = now - timedelta(days=9)
        used, _ = tokens.create_token(tenant.account, "Order pipeline")
        used.created_at = now - timedelta(days=15)
        used.last_used_at = now - timedelta(minutes=12)
        db.session.commit()
        return stats.id, attempt_id


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_screenshots(logged_in: Page, live_server, screenshot_dir: Path):
    page = logged_in
    stats_id, attempt_id = seed(live_server)

    page.goto("/webhooks")
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(page.locator(".badge-bad")).to_have_text("Out of order")
    page.screenshot(path=screenshot_dir / "list.png")

    open_wizard(page)
    fill_general(page, "Orders to ERP", "Sends every change in the fulfillment queue to the ERP.", enabled=True)
    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")
    page.get_by_role("radio", name=QUEUE_TYPE).check()
    page.mouse.move(0, 0)
    page.screenshot(path=screenshot_dir / "wizard-type.png")

    next_step(page, "HTTP Settings")
    page.get_by_label("Endpoint URL").fill("https://erp.acme.example/connect/fulfillment")
    page.get_by_label("Header name").fill("X-Api-Key")
    page.get_by_label("Header value").fill("erp-4f9c21")
    page.get_by_role("button", name="+ Add header").click()
    page.get_by_label("Header name").nth(1).fill("X-Tenant")
    page.get_by_label("Header value").nth(1).fill("acme-eu")
    page.get_by_label("Header value").nth(1).blur()
    page.screenshot(path=screenshot_dir / "wizard-http.png")

    page.goto(f"/webhooks/{stats_id}")
    expect(page.locator("#statistics")).to_contain_text("1284")
    expect(page.locator("#chart svg")).to_be_visible()
    page.screenshot(path=screenshot_dir / "details.png", full_page=True)
    page.goto(f"/webhooks/{stats_id}?tab=deliveries")
    expect(page.locator("#deliveries tbody tr")).to_have_count(20)
    page.screenshot(path=screenshot_dir / "deliveries.png")
    page.goto(f"/webhooks/{stats_id}?tab=events")
    expect(page.locator("tbody tr")).to_have_count(6)
    page.screenshot(path=screenshot_dir / "events.png")
    page.goto(f"/webhooks/{stats_id}?tab=handler")
    page.screenshot(path=screenshot_dir / "handler.png", full_page=True)

    page.goto(f"/webhooks/{stats_id}/attempts/{attempt_id}")
    expect(page.locator("h1")).to_contain_text("Success")
    page.screenshot(path=screenshot_dir / "attempt.png", full_page=True)

    page.goto("/settings/tokens")
    page.get_by_label("Token name").fill("Billing system")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_be_visible()
    page.screenshot(path=screenshot_dir / "tokens.png")

    phone = page.context.browser.new_context(
        base_url=page.context.pages[0].url.split("/settings")[0], viewport={"width": 390, "height": 844},
        color_scheme="dark", is_mobile=True, device_scale_factor=1,
    )  # fmt: skip
    small = phone.new_page()
    log_in(small)
    small.goto("/webhooks")
    small.screenshot(path=screenshot_dir / "phone-dark.png")
    phone.close()

    for name in FILES:
        width, height = png_size(screenshot_dir / name)
        if name == "phone-dark.png":
            assert (width, height) == (390, 844)
            continue
        assert width == 1280
        assert height == 800 or (name in FULL_PAGE and height >= 800)
