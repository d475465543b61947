"""Steps shared by the browser tests: walking the Create Webhook wizard."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

QUEUE_TYPE = "Subscription — Fulfillment Requests — Queue Changes"
DYNAMIC_TYPE = "Subscription — Change Request — Draft Validation"
DYNAMIC_REASON = "Requires the product's Dynamic Validation capability."


def step_heading(page: Page, title: str):
    return expect(page.get_by_role("heading", level=2)).to_have_text(re.compile(rf"^\d\. {re.escape(title)}$"))


def next_step(page: Page, expected_title: str) -> None:
    page.get_by_role("button", name="Next", exact=True).click()
    step_heading(page, expected_title)


def open_wizard(page: Page) -> None:
    page.goto("/webhooks")
    page.locator(".page-header").get_by_role("link", name="Create Webhook").click()
    expect(page).to_have_title(re.compile("^Create Webhook · General"))
    step_heading(page, "General")


def fill_general(page: Page, name: str, description: str = "", enabled: bool = False) -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Description").fill(description)
    switch = page.get_by_role("switch", name="Enabled")
    expect(switch).not_to_be_checked()
    if enabled:
        # The visible track covers the (transparent) input, so click it as a person would.
        page.locator("label.switch").click()
        expect(switch).to_be_checked()
    next_step(page, "Product")
