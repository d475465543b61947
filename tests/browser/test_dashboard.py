"""rq-dashboard in a real browser: an admin sees the queues and the workers, filled in by the
dashboard's own scripts under the page's Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from redis import Redis
from rq import Queue, SimpleWorker

from tests.browser.conftest import LiveServer, log_in
from tests.conftest import PASSWORD
from webhookapp.engine import dispatch
from webhookapp.services import accounts

pytestmark = pytest.mark.browser
ADMIN = "root@acme.test"


@pytest.fixture
def admin(live_server: LiveServer) -> str:
    with live_server.db():
        accounts.create_user(live_server.vendor.account_id, ADMIN, PASSWORD, name="Root", is_admin=True)
    return ADMIN


def test_an_admin_sees_the_queues_and_workers_tables_filled_in(page: Page, live_server: LiveServer, admin):
    connection = Redis.from_url(live_server.app.config["REDIS_URL"])
    queue = Queue(dispatch.QUEUE_NAME, connection=connection)
    queue.enqueue("webhookapp.engine.jobs.sweep")  # one job waiting, no worker to take it
    worker = SimpleWorker([queue], connection=connection, name="dashboard-test-worker")
    worker.register_birth()
    blocked = []
    page.on("console", lambda message: blocked.append(message.text) if "Security Policy" in message.text else None)
    try:
        log_in(page, admin)
        page.goto("/admin/rq/")
        row = page.locator("#queues tbody tr", has_text=dispatch.QUEUE_NAME)
        expect(row).to_be_visible()
        expect(row).to_contain_text("1")
        page.goto("/admin/rq/workers")  # the short path leads to its page
        expect(page).to_have_url(re.compile(r"/admin/rq/0/view/workers$"))
        expect(page.locator("#workers tbody tr", has_text="dashboard-test-worker")).to_be_visible()
        # Dark when the system is, as the app's pages are; light otherwise.
        background = "() => getComputedStyle(document.body).backgroundColor"
        assert page.evaluate(background) == "rgb(248, 249, 250)"
        page.emulate_media(color_scheme="dark")
        assert page.evaluate(background) == "rgb(13, 17, 23)"
        # The dashboard redraws its tables as it polls: a check that waits for the cell as it is.
        expect(page.locator("#workers td").first).to_have_css("color", "rgb(230, 237, 243)")
        assert blocked == []
        page.get_by_role("link", name="Back to webhookapp").click()
        expect(page).to_have_url(re.compile(r"/webhooks$"))
    finally:
        worker.register_death()
