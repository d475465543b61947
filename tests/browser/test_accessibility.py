"""Form fields as assistive technology sees them (Chromium's accessibility tree), and where focus goes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import QUEUE_TYPE, fill_general, next_step, open_wizard

pytestmark = pytest.mark.browser


def ax_invalid(page: Page, selector: str) -> str | None:
    """The "invalid" property Chromium exposes for the element, via the DevTools protocol."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        tree = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node, "fetchRelatives": False})
    finally:
        cdp.detach()
    props = {p["name"]: p["value"].get("value") for n in tree["nodes"] for p in n.get("properties", [])}
    return props.get("invalid")


def test_field_with_error_is_invalid_and_described(page: Page):
    page.goto("/login")
    page.get_by_role("button", name="Log in").click()
    email = page.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(re.compile(r"^(⚠ )?Enter your email address\.$"))
    assert ax_invalid(page, "#email") == "true"


def test_untouched_field_is_not_invalid(page: Page):
    page.goto("/login")
    email = page.get_by_label("Email")
    expect(email).to_be_visible()
    assert email.get_attribute("aria-describedby") is None
    assert email.get_attribute("aria-invalid") in (None, "false")
    assert ax_invalid(page, "#email") == "false"


def test_each_wizard_step_starts_at_its_heading_and_an_error_at_its_field(logged_in: Page):
    page = logged_in
    open_wizard(page)
    expect(page.get_by_role("heading", level=2)).to_be_focused()
    page.get_by_role("button", name="Next", exact=True).click()  # no name
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    fill_general(page, "Orders to ERP")
    expect(page.get_by_role("heading", level=2, name="2. Product")).to_be_focused()
    page.get_by_role("button", name="Next", exact=True).click()  # no product
    expect(page.get_by_label("Acme Cloud")).to_be_focused()
    expect(page.get_by_role("group", name=re.compile("Select the product"))).to_have_accessible_description(
        re.compile("product")
    )
    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")
    expect(page.get_by_role("heading", level=2)).to_be_focused()


def test_a_header_row_error_names_the_row_and_marks_its_inputs(logged_in: Page):
    page = logged_in
    open_wizard(page)
    fill_general(page, "Orders to ERP")
    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")
    page.get_by_role("radio", name=QUEUE_TYPE).check()
    next_step(page, "HTTP Settings")
    page.get_by_label("Endpoint URL").fill("https://erp.example.com/hooks/orders")
    page.get_by_label("Header name").fill("X-Api-Key")
    page.get_by_role("button", name="+ Add header").click()
    page.get_by_label("Header name").nth(1).fill("Bad Name")
    page.get_by_role("button", name="Next", exact=True).click()

    expect(page.locator("#headers-errors li")).to_have_text(
        re.compile(r"^Header row 2: “Bad Name” is not a valid header name")
    )
    names, values = page.get_by_label("Header name"), page.get_by_label("Header value")
    for field in (names.nth(1), values.nth(1)):
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile("^Header row 2: "))
    for field in (names.nth(0), values.nth(0)):
        expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(names.nth(1)).to_be_focused()
