"""Form fields as assistive technology sees them (Chromium's accessibility tree)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

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
