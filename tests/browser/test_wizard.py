"""Logging in and the "Create Webhook" wizard, clicked and typed through in Chromium."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.helpers import (
    DYNAMIC_REASON,
    DYNAMIC_TYPE,
    QUEUE_TYPE,
    fill_general,
    next_step,
    open_wizard,
    step_heading,
)
from tests.conftest import PASSWORD
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook, WizardDraft

pytestmark = pytest.mark.browser


def webhook_named(live_server, label: str) -> Webhook:
    with live_server.db():
        return live_server.detach(db.session.scalars(select(Webhook).filter_by(label=label)).one())


def test_login_form(page: Page, live_server):
    page.goto("/webhooks")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fwebhooks$"))
    expect(page.locator(".flash-info")).to_have_text("Please log in to continue.")

    page.get_by_label("Email").fill("alice@acme.test")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#password-errors")).to_have_text("Invalid email or password.")
    expect(page.get_by_label("Email")).to_have_value("alice@acme.test")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/webhooks")
    expect(page.locator(".flash-success")).to_have_text("Welcome, Acme Vendor User.")
    expect(page.locator(".whoami")).to_contain_text(live_server.vendor.account_id)
    expect(page.get_by_role("heading", name="No webhooks yet")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile("/login$"))
    expect(page.locator(".flash-info")).to_have_text("You have been logged out.")


def test_wizard_creates_get_webhook(logged_in: Page, live_server):
    page = logged_in
    open_wizard(page)
    fill_general(page, "Orders to ERP", "Pushes fulfillment changes to the ERP.", enabled=True)

    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")

    expect(page.get_by_role("group")).to_contain_text("for Acme Cloud")
    locked = page.locator("label.choice", has_text=DYNAMIC_TYPE)
    expect(locked).to_have_class(re.compile(r"\bdisabled\b"))
    expect(locked.get_by_role("radio")).to_be_disabled()
    expect(locked.locator(".reason")).to_have_text(DYNAMIC_REASON)
    expect(page.get_by_role("radio", name=DYNAMIC_TYPE)).to_have_accessible_description(DYNAMIC_REASON)
    page.get_by_role("radio", name=QUEUE_TYPE).check()
    next_step(page, "HTTP Settings")

    page.get_by_label("Endpoint URL").fill("https://erp.example.com/hooks/orders")
    secret = page.get_by_label("JWT secret").input_value()
    assert len(secret) >= 40
    expect(page.get_by_role("radio", name="POST")).to_be_checked()
    page.get_by_role("radio", name="GET").check()
    next_step(page, "Additional data")

    expect(page.locator(".note")).to_contain_text("This webhook uses GET")
    expect(page.get_by_label("Additional data (JSON object)")).to_have_count(0)
    page.get_by_role("button", name="Create", exact=True).click()

    expect(page.locator(".flash-success")).to_have_text("Webhook “Orders to ERP” created.")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Orders to ERP\s+Enabled$"))
    properties = page.locator(".properties").first
    expect(properties).to_contain_text("Enabled")
    expect(properties).to_contain_text("Acme Cloud")
    expect(properties).to_contain_text(QUEUE_TYPE)
    expect(properties).to_contain_text("Pushes fulfillment changes to the ERP.")
    expect(page.get_by_role("link", name="Custom Data")).to_have_count(0)  # a GET webhook has none
    page.get_by_role("link", name="HTTP Settings").click()
    http = page.locator("#http-settings")
    expect(http.locator(".badge-method")).to_have_text("GET")
    expect(http).to_contain_text("https://erp.example.com/hooks/orders")
    expect(page.locator("#custom-data")).to_have_count(0)

    webhook = webhook_named(live_server, "Orders to ERP")
    assert page.url.endswith(f"/webhooks/{webhook.id}?tab=http")
    assert (webhook.http_method, webhook.active, webhook.out_of_order) == ("GET", True, False)
    assert (webhook.object_class, webhook.type) == ("fulfillment_request", "event")
    assert webhook.product_id == live_server.vendor.plain_product_id
    with live_server.db():
        assert webhook.jwt_secret == secret
    assert (webhook.headers, webhook.data) == ({}, {})
    with live_server.db():
        assert db.session.scalar(select(db.func.count()).select_from(WizardDraft)) == 0


def test_wizard_creates_post_webhook_with_headers_and_data(logged_in: Page, live_server):
    page = logged_in
    open_wizard(page)
    fill_general(page, "Change validator")

    page.get_by_label("Acme Dynamic").check()
    next_step(page, "Type")
    expect(page.get_by_role("radio", name=DYNAMIC_TYPE)).to_be_enabled()
    expect(page.locator(".reason", has_text="Dynamic Validation")).to_have_count(0)
    page.get_by_role("radio", name=DYNAMIC_TYPE).check()
    next_step(page, "HTTP Settings")

    page.get_by_label("Endpoint URL").fill("https://validator.example.com/draft")
    names, values = page.get_by_label("Header name"), page.get_by_label("Header value")
    expect(names).to_have_count(1)
    names.nth(0).fill("X-Api-Key")
    values.nth(0).fill("k-123")
    page.get_by_role("button", name="+ Add header").click()
    expect(names).to_have_count(2)
    expect(names.nth(0)).to_have_value("X-Api-Key")
    expect(page.get_by_label("Endpoint URL")).to_have_value("https://validator.example.com/draft")
    names.nth(1).fill("X-Tenant")
    values.nth(1).fill("acme eu")
    next_step(page, "Additional data")

    data = {"purpose": "demo", "audience": ["partners", "resellers"]}
    page.get_by_label("Additional data (JSON object)").fill(json.dumps(data))
    page.get_by_role("button", name="Back").click()
    step_heading(page, "HTTP Settings")
    expect(page.get_by_label("Endpoint URL")).to_have_value("https://validator.example.com/draft")
    expect(names).to_have_count(2)
    expect(values.nth(0)).to_have_value("k-123")
    expect(names.nth(1)).to_have_value("X-Tenant")
    expect(values.nth(1)).to_have_value("acme eu")
    expect(page.get_by_role("radio", name="POST")).to_be_checked()
    next_step(page, "Additional data")
    expect(page.get_by_label("Additional data (JSON object)")).to_have_value(json.dumps(data))
    page.get_by_role("button", name="Create", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Change validator\s+Disabled$"))
    page.get_by_role("link", name="HTTP Settings").click()
    http = page.locator("#http-settings")
    expect(http.locator(".badge-method")).to_have_text("POST")
    expect(http.get_by_role("row")).to_have_text([re.compile("Name.*Value"), "X-Api-Keyk-123", "X-Tenantacme eu"])
    page.get_by_role("link", name="Custom Data").click()
    custom = page.locator("#custom-data")
    expect(custom.get_by_role("heading")).to_have_text("Custom Data")
    assert json.loads(custom.locator("pre").inner_text()) == data
    expect(page.get_by_role("navigation", name="Sections")).to_contain_text("Custom Data")

    webhook = webhook_named(live_server, "Change validator")
    assert (webhook.http_method, webhook.active, webhook.type) == ("POST", False, "change_validator")
    assert webhook.headers == {"X-Api-Key": "k-123", "X-Tenant": "acme eu"}
    assert webhook.data == data


def test_wizard_shows_validation_error_next_to_field(logged_in: Page, live_server):
    page = logged_in
    open_wizard(page)
    page.get_by_role("button", name="Next", exact=True).click()
    step_heading(page, "General")
    expect(page.locator("#label-errors")).to_have_text("Name is required.")

    fill_general(page, "Bad URL hook")
    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")
    page.get_by_role("radio", name=QUEUE_TYPE).check()
    next_step(page, "HTTP Settings")

    url = page.get_by_label("Endpoint URL")
    url.fill("ftp://x")
    url.press("Enter")  # submits Next (the hidden default button), not the header row's "Remove"
    step_heading(page, "HTTP Settings")
    field = page.locator(".field", has=page.locator("#external_url"))
    expect(field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(field.locator(".field-errors")).to_have_text("Endpoint URL must start with http:// or https://.")
    expect(url).to_have_value("ftp://x")
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(url).to_have_accessible_description(re.compile("must start with http:// or https://"))
    expect(page.locator("li.current")).to_contain_text("HTTP Settings")

    expect(page.get_by_label("Header name")).to_have_count(1)
    url.fill("https://handler.example.com/fixed")
    url.press("Enter")
    step_heading(page, "Additional data")
    page.get_by_role("link", name="HTTP Settings").click()  # a completed step in the stepper
    step_heading(page, "HTTP Settings")
    expect(url).to_have_value("https://handler.example.com/fixed")
    next_step(page, "Additional data")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bad URL hook")
    assert webhook_named(live_server, "Bad URL hook").external_url == "https://handler.example.com/fixed"


def test_wizard_cancel_discards_draft(logged_in: Page, live_server):
    page = logged_in
    open_wizard(page)
    page.get_by_label("Name", exact=True).fill("Never mind")
    page.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(f"{live_server.url}/webhooks")
    expect(page.locator(".flash-info")).to_have_text("Webhook creation cancelled.")
    with live_server.db():
        assert db.session.scalar(select(db.func.count()).select_from(WizardDraft)) == 0
        assert db.session.scalar(select(db.func.count()).select_from(Webhook)) == 0


def test_wizard_creates_a_standard_webhooks_webhook(logged_in: Page, live_server):
    page = logged_in
    open_wizard(page)
    fill_general(page, "Standard hook")
    page.get_by_label("Acme Cloud").check()
    next_step(page, "Type")
    page.get_by_role("radio", name=QUEUE_TYPE).check()
    next_step(page, "HTTP Settings")

    page.get_by_label("Endpoint URL").fill("https://erp.example.com/hooks/std")
    expect(page.get_by_role("radio", name="JWT", exact=True)).to_be_checked()
    page.get_by_role("radio", name="Standard Webhooks").check()
    next_step(page, "Additional data")
    page.get_by_role("button", name="Create", exact=True).click()

    expect(page.locator(".flash-success")).to_have_text("Webhook “Standard hook” created.")
    page.get_by_role("link", name="HTTP Settings").click()
    expect(page.locator("#signature-format")).to_contain_text("Standard Webhooks")
    webhook = webhook_named(live_server, "Standard hook")
    assert webhook.signature_format == "standard"
    with live_server.db():
        assert webhook.jwt_secret.startswith("whsec_")  # not the JWT secret the step was filled with
