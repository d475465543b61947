"""The details page (reveal and copy the secret, edit, disable/enable) and deleting from the list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_axe import assert_accessible
from tests.conftest import make_webhook
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

pytestmark = pytest.mark.browser


@pytest.fixture
def hook(live_server) -> Webhook:
    with live_server.db():
        webhook = make_webhook(
            live_server.tenant(), label="Billing hook", headers={"X-Api-Key": "abc"}, data={"purpose": "demo"}
        )
        return live_server.detach(webhook)


def stored(live_server, webhook_id: str) -> Webhook | None:
    with live_server.db():
        webhook = db.session.get(Webhook, webhook_id)
        return None if webhook is None else live_server.detach(webhook)


def plain_secret(live_server, webhook: Webhook | None) -> str:
    """A detached webhook's secret, decrypted with the app's keys."""
    assert webhook is not None
    with live_server.db():
        return webhook.jwt_secret


def test_reveal_and_copy_jwt_secret(logged_in: Page, live_server, hook: Webhook):
    """Reveal and copy the secret, then switch to a next one, which needs its box ticked."""
    page = logged_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"/webhooks/{hook.id}?tab=http")
    secret_box = page.locator("#http-settings .secret")
    value = secret_box.locator("#jwt-secret")
    expect(value).to_have_text("•" * 24)
    assert plain_secret(live_server, hook) not in page.content()

    copy = secret_box.get_by_role("button", name="Copy")
    expect(copy).to_be_visible()  # shown by app.js
    reveal = secret_box.get_by_role("button", name="Reveal JWT secret", exact=True)
    reveal.click()
    expect(value).to_have_text(plain_secret(live_server, hook))
    expect(page).to_have_url(re.compile(rf"/webhooks/{hook.id}\?tab=http$"))  # revealed in place, no reload
    hide = secret_box.get_by_role("button", name="Hide JWT secret", exact=True)
    expect(hide).to_be_focused()  # the same button, now saying what it does next
    assert plain_secret(live_server, stored(live_server, hook.id)) == value.inner_text()

    copy.click()
    expect(secret_box.locator(".copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == plain_secret(live_server, hook)

    hide.click()
    expect(value).to_have_text("•" * 24)
    expect(secret_box.get_by_role("button", name="Reveal JWT secret", exact=True)).to_be_visible()

    # Switching asks for a ticked box first: the browser holds the form, and the server refuses without it.
    page.get_by_role("button", name="Generate next secret").click()
    expect(page.get_by_text("A next secret was generated.")).to_be_visible()
    assert_accessible(page, "details, http tab with a next secret")
    page.get_by_role("button", name="Switch to next secret").click()
    confirm = page.get_by_label("The handler accepts the next secret")
    assert confirm.evaluate("box => box.validity.valueMissing")
    switched = stored(live_server, hook.id)
    assert switched is not None and switched.jwt_secret_next_encrypted is not None  # nothing switched
    confirm.check()
    page.get_by_role("button", name="Switch to next secret").click()
    expect(page.get_by_text("Deliveries are now signed with the new secret")).to_be_visible()
    assert stored(live_server, hook.id).jwt_secret_next_encrypted is None



def test_reveal_without_javascript(no_js_page: Page, live_server, hook: Webhook):
    """Reveal is a plain GET form (?tab=http&reveal=secret) when scripts are off."""
    page = no_js_page
    page.goto(f"/webhooks/{hook.id}")
    page.get_by_role("link", name="HTTP Settings").click()
    page.get_by_role("button", name="Reveal JWT secret").click()
    expect(page).to_have_url(re.compile(r"\?tab=http&reveal=secret$"))
    expect(page.locator("#jwt-secret")).to_have_text(plain_secret(live_server, hook))
    page.get_by_role("button", name="Hide JWT secret").click()
    expect(page.locator("#jwt-secret")).to_have_text("•" * 24)


def test_copy_button_hidden_without_javascript(no_js_page: Page, hook: Webhook):
    page = no_js_page
    page.goto(f"/webhooks/{hook.id}?tab=http")
    expect(page.get_by_role("button", name="Copy")).to_be_hidden(timeout=500)


def test_edit_webhook(logged_in: Page, live_server, hook: Webhook):
    page = logged_in
    page.goto(f"/webhooks/{hook.id}")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit webhook")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Billing hook")
    expect(page.get_by_label("JWT secret")).to_have_value("")

    page.get_by_label("Name", exact=True).fill("Billing hook v2")
    page.get_by_role("button", name="+ Add header").click()
    names, values = page.get_by_label("Header name"), page.get_by_label("Header value")
    expect(names).to_have_count(2)
    expect(page.get_by_label("Name", exact=True)).to_have_value("Billing hook v2")  # kept across the re-render
    names.nth(1).fill("X-Region")
    values.nth(1).fill("eu-west")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(rf"/webhooks/{hook.id}$"))
    expect(page.locator(".flash-success")).to_have_text("Webhook “Billing hook v2” saved.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Billing hook v2")
    page.get_by_role("link", name="HTTP Settings").click()
    rows = page.locator("#http-settings tbody tr")
    expect(rows).to_have_text(["X-Api-Keyabc", "X-Regioneu-west"])

    webhook = stored(live_server, hook.id)
    assert webhook.label == "Billing hook v2"
    assert webhook.headers == {"X-Api-Key": "abc", "X-Region": "eu-west"}
    assert plain_secret(live_server, webhook) == plain_secret(live_server, hook)  # left empty: unchanged
    assert webhook.data == {"purpose": "demo"}


def test_disable_and_enable(logged_in: Page, live_server, hook: Webhook):
    page = logged_in
    page.goto(f"/webhooks/{hook.id}")
    badge = page.get_by_role("heading", level=1).locator(".badge")
    expect(badge).to_have_text("Enabled")

    page.get_by_label("More actions").click()
    page.get_by_role("button", name="Disable").click()
    expect(page.locator(".flash-success")).to_have_text("Webhook “Billing hook” disabled.")
    expect(badge).to_have_text("Disabled")
    expect(page.locator(".properties").first).to_contain_text("Disabled")
    assert stored(live_server, hook.id).active is False

    page.get_by_label("More actions").click()
    page.get_by_role("button", name="Enable").click()
    expect(page.locator(".flash-success")).to_have_text("Webhook “Billing hook” enabled.")
    expect(badge).to_have_text("Enabled")
    page.get_by_label("More actions").click()
    expect(page.get_by_role("button", name="Disable")).to_be_visible()
    assert stored(live_server, hook.id).active is True


def test_delete_from_row_menu(logged_in: Page, live_server, hook: Webhook):
    with live_server.db():
        keep = make_webhook(live_server.tenant(), label="Keep me").id
    page = logged_in
    page.goto("/webhooks")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)

    menu_button = page.get_by_label("Actions for Billing hook")
    menu_item = page.locator("tr", has_text="Billing hook").get_by_role("link", name="Delete")
    expect(menu_item).to_be_hidden()
    menu_button.click()
    expect(menu_item).to_be_visible()
    page.keyboard.press("Escape")  # app.js closes the menu
    expect(menu_item).to_be_hidden()
    menu_button.click()
    menu_item.click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Delete webhook?")
    expect(page.locator(".card")).to_contain_text(hook.id)
    expect(page.locator(".card")).to_contain_text(hook.external_url)
    page.get_by_role("button", name="Delete").click()

    expect(page).to_have_url(f"{live_server.url}/webhooks")
    expect(page.locator(".flash-success")).to_have_text("Webhook “Billing hook” deleted.")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Keep me")
    expect(page.get_by_role("link", name="Billing hook")).to_have_count(0)
    assert stored(live_server, hook.id) is None
    assert stored(live_server, keep) is not None


def test_disable_from_row_menu_stays_on_list(logged_in: Page, live_server, hook: Webhook):
    page = logged_in
    page.goto("/webhooks?q=Billing")
    page.get_by_label("Actions for Billing hook").click()
    page.locator("tr", has_text="Billing hook").get_by_role("button", name="Disable").click()
    expect(page).to_have_url(f"{live_server.url}/webhooks?q=Billing")
    expect(page.locator("tbody tr .badge")).to_have_text("Disabled")
    assert stored(live_server, hook.id).active is False


def test_custom_data_shown_as_typed(logged_in: Page, live_server):
    data = {"team": "R&D <eu>", "city": "Zürich"}
    with live_server.db():
        webhook_id = make_webhook(live_server.tenant(), data=data).id
    page = logged_in
    page.goto(f"/webhooks/{webhook_id}?tab=data")
    expect(page.locator("#custom-data pre")).to_have_text(
        '{\n  "team": "R&D <eu>",\n  "city": "Zürich"\n}', timeout=500
    )


def test_tabs_show_one_section_at_a_time_without_javascript(no_js_page: Page, hook: Webhook):
    page = no_js_page
    page.goto(f"/webhooks/{hook.id}")
    sections = {"Statistics": "#statistics", "HTTP Settings": "#http-settings", "Custom Data": "#custom-data",
                "Deliveries": "#deliveries"}  # fmt: skip
    tabs = page.get_by_role("navigation", name="Sections")
    for label, section in sections.items():
        tabs.get_by_role("link", name=label).click()
        expect(page.locator(section)).to_be_visible()
        for other in set(sections.values()) - {section}:
            expect(page.locator(other)).to_have_count(0)
        expect(tabs.locator('[aria-current="page"]')).to_have_text(label)
    page.go_back()  # each tab has its own address, so history steps through them
    expect(page.locator("#custom-data")).to_be_visible()
