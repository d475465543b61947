"""Each wizard step refuses bad input: 400, the message next to the field, the draft stays put."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.pages import STEPS, Wizard, field_errors, input_value, inputs, text, textarea_value
from webhookapp.core import catalog
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

LONG_URL = "https://handler.example.com/" + "a" * 4069  # 4097 characters
HEADER_CHARS = "letters, digits and - _ . ! # $ & ' * + ^ ` | ~"
NOT_JSON = "Additional data is not valid JSON:"
NOT_AN_OBJECT = 'Additional data must be a JSON object, such as {"purpose": "demo"}.'


def assert_stays_on(wizard: Wizard, step: str, response) -> None:
    """The step was re-shown with an error and is not completed; the next step sends back here."""
    assert response.status_code == 400
    assert step not in wizard.draft().completed
    following = STEPS[STEPS.index(step) + 1] if step != STEPS[-1] else None
    if following:
        assert wizard.get(following).headers["Location"] == wizard.url(step)


@pytest.fixture
def wizard(client, auth, vendor) -> Wizard:
    auth.login()
    return Wizard(client, vendor.products[0].id)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", "Name is required."),
        ("    ", "Name is required."),
        ("n" * 101, "Name must be at most 100 characters (it has 101)."),
    ],
)
def test_general_step_refuses_a_bad_name(wizard, label, message):
    response = wizard.post("general", label=label)
    assert field_errors(response, "label") == [message]
    assert input_value(text(response), "label") == label  # what was typed is shown again
    assert_stays_on(wizard, "general", response)


def test_general_step_refuses_a_long_description(wizard):
    response = wizard.post("general", description="d" * 2001)
    assert field_errors(response, "description") == ["Description must be at most 2000 characters."]
    assert textarea_value(text(response), "description") == "d" * 2001
    assert_stays_on(wizard, "general", response)


@pytest.mark.parametrize("choice", ["other", "unknown", "missing"])
def test_product_step_refuses_products_not_offered(wizard, other_vendor, choice):
    wizard.complete("general")
    product_id = {"other": other_vendor.products[0].id, "unknown": "PRD-999-999-999", "missing": ""}[choice]
    response = wizard.post("product", product_id=product_id)
    assert field_errors(response, "product_id") == ["Choose one of the products available to your account."]
    assert_stays_on(wizard, "product", response)
    assert other_vendor.products[0].id not in text(response)


def test_type_step_refuses_a_vendor_only_type_for_a_distributor(client, auth, vendor, distributor):
    auth.login(distributor.email, PASSWORD)
    wizard = Wizard(client, vendor.products[1].id)
    wizard.complete("general", "product")
    page = text(wizard.get("type"))
    assert page.count("Available for vendors only.") == 12
    response = wizard.post("type", type_key="fulfillment_request.validator")
    assert field_errors(response, "type_key") == [
        "Subscription — Purchase Request — Draft Validation: Available for vendors only."
    ]
    assert_stays_on(wizard, "type", response)
    assert wizard.post("type", type_key="usage_file.event").status_code == 302


def test_type_step_refuses_a_capability_gated_type_on_a_plain_product(wizard):
    wizard.complete("general", "product")
    page = text(wizard.get("type"))
    assert page.count("Requires the product's Dynamic Validation capability.") == 1
    assert "Available for vendors only." not in page
    response = wizard.post("type", type_key="fulfillment_request.change_validator")
    assert field_errors(response, "type_key") == [
        "Subscription — Change Request — Draft Validation: Requires the product's Dynamic Validation capability."
    ]
    assert_stays_on(wizard, "type", response)


def test_capability_gated_type_is_offered_for_a_dynamic_validation_product(client, auth, vendor):
    auth.login()
    wizard = Wizard(client, vendor.products[1].id)
    wizard.complete("general", "product")
    assert "Requires the product's Dynamic Validation capability." not in text(wizard.get("type"))
    assert wizard.post("type", type_key="fulfillment_request.change_validator").status_code == 302


@pytest.mark.parametrize("type_key", ["", "fulfillment_request.nope"])
def test_type_step_refuses_an_unknown_type(wizard, type_key):
    wizard.complete("general", "product")
    response = wizard.post("type", type_key=type_key)
    assert field_errors(response, "type_key") == ["Choose one of the listed types."]
    assert_stays_on(wizard, "type", response)


def header(name: str, value: str = "1", **more: str) -> dict[str, str]:
    return {"headers-0-name": name, "headers-0-value": value, **more}


def bad_name(name: str) -> str:
    return f"“{name}” is not a valid header name ({HEADER_CHARS})."


def reserved(name: str) -> str:
    return f"The {name} header is set by the webhook service and cannot be overridden."


LINE_BREAKS = "Header values may not contain line breaks."
SCHEME = "Endpoint URL must start with http:// or https://."


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"external_url": "ftp://handler.example.com/h"}, "external_url", SCHEME),
        ({"external_url": "javascript:alert(1)"}, "external_url", SCHEME),
        ({"external_url": LONG_URL}, "external_url", "Endpoint URL must be at most 4096 characters (it has 4097)."),
        (
            {"external_url": "https://me:pw@handler.example.com/"},
            "external_url",
            "Endpoint URL may not contain a user name or password; use a header.",
        ),
        ({"external_url": ""}, "external_url", "Endpoint URL is required."),
        ({"jwt_secret": "s" * 101}, "jwt_secret", "JWT secret must be at most 100 characters."),
        ({"http_method": "PUT"}, "http_method", "Method must be GET or POST."),
        (header("X Api Key"), "headers", "Header row 1: " + bad_name("X Api Key")),
        (header("X-Api:Key"), "headers", "Header row 1: " + bad_name("X-Api:Key")),
        (header("X-Grüße"), "headers", "Header row 1: " + bad_name("X-Grüße")),
        (header("X-A", "a\r\nInjected: 1"), "headers", "Header row 1: " + LINE_BREAKS),
        (header("X-A", "a\nb"), "headers", "Header row 1: " + LINE_BREAKS),
        (header("X-A", "a\rb"), "headers", "Header row 1: " + LINE_BREAKS),
        (header("authorization"), "headers", "Header row 1: " + reserved("authorization")),
        (header("HOST"), "headers", "Header row 1: " + reserved("HOST")),
        (header("Content-Length"), "headers", "Header row 1: " + reserved("Content-Length")),
        (header("content-type"), "headers", "Header row 1: " + reserved("content-type")),
        (
            header("X-A", **{"headers-1-name": "x-a", "headers-1-value": "2"}),
            "headers",
            "Header row 2: The x-a header is given twice.",
        ),
    ],
)
def test_http_step_refuses_bad_settings(wizard, fields, field, message):
    wizard.complete("general", "product", "type")
    response = wizard.post("http", **fields)
    assert field_errors(response, field) == [message]
    assert_stays_on(wizard, "http", response)
    if "external_url" in fields:
        assert input_value(text(response), "external_url") == fields["external_url"]


@pytest.mark.parametrize(
    ("custom_data", "message"),
    [
        ("{", f"{NOT_JSON} Expecting property name enclosed in double quotes (line 1, column 2)."),
        ("{'a': 1}", f"{NOT_JSON} Expecting property name enclosed in double quotes (line 1, column 2)."),
        ("nope", f"{NOT_JSON} Expecting value (line 1, column 1)."),
        ("[1, 2]", NOT_AN_OBJECT),
        ('"just text"', NOT_AN_OBJECT),
        ("42", NOT_AN_OBJECT),
    ],
)
def test_data_step_refuses_bad_json(wizard, custom_data, message):
    wizard.complete("general", "product", "type", "http")
    response = wizard.post("data", custom_data=custom_data)
    assert field_errors(response, "custom_data") == [message]
    assert textarea_value(text(response), "custom_data") == custom_data
    assert_stays_on(wizard, "data", response)
    assert wizard.draft().data["data_text"] == custom_data
    assert db.session.query(Webhook).count() == 0


def test_vendor_sees_only_its_products_and_distributor_sees_all(client, auth, vendor, other_vendor, distributor):
    def offered(wizard: Wizard) -> list[str]:
        body = text(wizard.get("product"))
        return sorted(input_value(tag, "product_id") for tag in inputs(body, "product_id"))

    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general")
    assert offered(wizard) == sorted(p.id for p in vendor.products)
    auth.logout()
    auth.login(distributor.email, PASSWORD)
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general")
    assert offered(wizard) == sorted(p.id for p in vendor.products + other_vendor.products)


def test_type_step_groups_the_types_and_marks_the_vendor_only_ones_for_everyone(client, auth, vendor, distributor):
    for email, product in ((vendor.email, vendor.products[1]), (distributor.email, vendor.products[1])):
        auth.login(email, PASSWORD)
        wizard = Wizard(client, product.id)
        wizard.complete("general", "product")
        page = text(wizard.get("type"))
        queue_part, _, validation_part = page.partition('<h3 class="choice-group">Validation</h3>')
        assert '<h3 class="choice-group">Queue Changes</h3>' in queue_part
        assert all(f'value="{entry.key}"' in (queue_part if entry.kind == "event" else validation_part)
                   for entry in catalog.CATALOG)  # fmt: skip
        assert page.count("Available for Vendors only</span>") == 12
        assert 'For example, "new request has been created"' in page
        client.post("/logout")
