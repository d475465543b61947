"""The edit page: valid saves, refused input that changes nothing, method GET, secret rotation."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.pages import checked_value, field_errors, input_value, inputs, textarea_value
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.webhooks import forms

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
OLD_SECRET = "the-old-secret-value-0123456789abcdefgh"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def stored(webhook_id: str) -> Webhook:
    db.session.rollback()
    return db.session.get(Webhook, webhook_id)


def snapshot(webhook_id: str) -> dict:
    row = stored(webhook_id)
    return {column.key: getattr(row, column.key) for column in Webhook.__table__.columns}


def form(**changes: str) -> dict[str, str]:
    """The edit form as the page fills it for ``hook``, with ``changes``."""
    values = {
        "label": "Orders",
        "description": "Order queue",
        "active": "y",
        "external_url": "https://handler.example.com/hook",
        "jwt_secret": "",
        "http_method": "POST",
        "headers-0-name": "X-Api-Key",
        "headers-0-value": "abc",
        "custom_data": '{"purpose": "demo"}',
        "action": "save",
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


@pytest.fixture
def hook_fields() -> dict[str, Any]:
    return {
        "label": "Orders",
        "description": "Order queue",
        "jwt_secret": OLD_SECRET,
        "headers": {"X-Api-Key": "abc"},
        "data": {"purpose": "demo"},
    }


@pytest.fixture
def hook(hook: Webhook) -> Webhook:
    """The suite's ``hook``, last modified long ago (so a save shows as a change of time)."""
    hook.modified_at = LONG_AGO
    db.session.commit()
    return hook


@pytest.fixture
def edit(client, auth, hook):
    """POST the edit form of ``hook``."""
    auth.login()
    return lambda **changes: client.post(f"/webhooks/{hook.id}/edit", data=form(**changes))


def test_edit_form_shows_current_values(client, auth, hook):
    auth.login()
    response = client.get(f"/webhooks/{hook.id}/edit")
    assert response.status_code == 200
    body = text(response)
    assert input_value(body, "label") == "Orders"
    assert textarea_value(body, "description") == "Order queue"
    assert input_value(body, "external_url") == "https://handler.example.com/hook"
    assert checked_value(body, "http_method") == "POST"
    assert (input_value(body, "headers-0-name"), input_value(body, "headers-0-value")) == ("X-Api-Key", "abc")
    assert json.loads(textarea_value(body, "custom_data")) == {"purpose": "demo"}
    assert input_value(body, "jwt_secret") == ""  # never sent to the page unasked
    assert OLD_SECRET not in body


def test_product_and_type_are_read_only(client, auth, vendor, hook, edit):
    body = text(client.get(f"/webhooks/{hook.id}/edit"))
    assert inputs(body, "product_id") == [] and inputs(body, "type_key") == []
    assert "<dt>Product</dt><dd>Acme Cloud" in body
    assert "<dt>Type</dt><dd>Subscription — Fulfillment Requests — Queue Changes</dd>" in body
    response = edit(product_id=vendor.products[1].id, type_key="listing_request.event")
    assert response.status_code == 302
    row = stored(hook.id)
    assert (row.product_id, row.object_class, row.type) == (vendor.products[0].id, "fulfillment_request", "event")


def test_valid_save_changes_the_webhook(hook, edit):
    response = edit(
        label="  Renamed  ",
        description="New text",
        active=None,
        external_url="http://other.example.com:8080/h?x=1",
        **{"headers-0-name": "X-Env", "headers-0-value": "prod", "headers-1-name": "X-Two", "headers-1-value": "2"},
        custom_data='{"team": "R&D", "n": 2}',
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/webhooks/{hook.id}"
    row = stored(hook.id)
    assert (row.label, row.description, row.active) == ("Renamed", "New text", False)
    assert row.external_url == "http://other.example.com:8080/h?x=1"
    assert row.headers == {"X-Env": "prod", "X-Two": "2"}
    assert row.data == {"team": "R&D", "n": 2}
    assert row.jwt_secret == OLD_SECRET
    assert row.modified_at > LONG_AGO


def test_save_flashes_on_the_details_page(client, hook, edit):
    edit(label="Renamed")
    assert "Webhook “Renamed” saved." in text(client.get(f"/webhooks/{hook.id}"))


def test_saving_with_get_clears_the_data(hook, edit):
    response = edit(http_method="GET", custom_data="this is not even JSON")
    assert response.status_code == 302
    row = stored(hook.id)
    assert (row.http_method, row.data) == ("GET", {})


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"label": ""}, "label", "Name is required."),
        ({"label": "n" * 101}, "label", "Name must be at most 100 characters (it has 101)."),
        ({"external_url": "ftp://x.example/h"}, "external_url", "Endpoint URL must start with http:// or https://."),
        ({"external_url": "javascript:alert(1)"}, "external_url", "Endpoint URL must start with http:// or https://."),
        (
            {"external_url": "https://x.example/" + "a" * 4096},
            "external_url",
            "Endpoint URL must be at most 4096 characters (it has 4114).",
        ),
        (
            {"external_url": "https://u:p@x.example/"},
            "external_url",
            "Endpoint URL may not contain a user name or password; use a header.",
        ),
        ({"jwt_secret": "s" * 101}, "jwt_secret", "JWT secret must be at most 100 characters."),
        ({"headers-0-name": "Bad Name"}, "headers", "Header row 1: “Bad Name” is not a valid header name"),
        (
            {"headers-0-value": "a\r\nX-Injected: 1"},
            "headers",
            "Header row 1: Header values may not contain line breaks.",
        ),
        (
            {"headers-0-name": "Authorization"},
            "headers",
            "Header row 1: The Authorization header is set by the webhook service and cannot be overridden.",
        ),
        (
            {"headers-1-name": "x-api-key", "headers-1-value": "2"},
            "headers",
            "Header row 2: The x-api-key header is given twice.",
        ),
        ({"custom_data": "{not json"}, "custom_data", "Additional data is not valid JSON:"),
        (
            {"custom_data": "[1, 2]"},
            "custom_data",
            'Additional data must be a JSON object, such as {"purpose": "demo"}.',
        ),
    ],
)
def test_invalid_input_shows_the_error_and_changes_nothing(hook, edit, changes, field, message):
    before = snapshot(hook.id)
    response = edit(**{"label": "Would change", **changes})
    assert response.status_code == 400  # as the wizard and the tokens page answer refused input
    [shown] = field_errors(response, field)
    assert shown.startswith(message)
    assert "<h1>Edit webhook</h1>" in text(response)
    assert snapshot(hook.id) == before


def test_additional_data_is_shown_as_typed_after_another_error(hook, edit):
    """The box shows the JSON typed, not the parsed object, when another field is refused."""
    response = edit(label="", custom_data='{"purpose": "demo", "ok": true}')
    assert field_errors(response, "label") == ["Name is required."]
    assert json.loads(textarea_value(text(response), "custom_data")) == {"purpose": "demo", "ok": True}


def test_generate_secret_fills_the_form_without_saving(client, hook, edit):
    before = snapshot(hook.id)
    response = edit(action="generate_secret", label="Not saved yet")
    assert response.status_code == 200
    body = text(response)
    new_secret = input_value(body, "jwt_secret")
    assert len(new_secret) >= 32
    assert new_secret != OLD_SECRET
    assert "A new JWT secret was generated. To apply it, tick “Replace the current secret” and save" in body
    assert input_value(body, "label") == "Not saved yet"  # the rest of the form is kept
    assert snapshot(hook.id) == before
    assert edit(jwt_secret=new_secret).status_code == 400  # not asked to replace it
    assert snapshot(hook.id) == before
    assert edit(jwt_secret=new_secret, change_secret="y").status_code == 302
    assert stored(hook.id).jwt_secret == new_secret


def test_saving_with_an_empty_secret_keeps_the_old_one(hook, edit):
    assert edit(jwt_secret="", label="Renamed").status_code == 302
    row = stored(hook.id)
    assert (row.jwt_secret, row.label) == (OLD_SECRET, "Renamed")


def test_the_page_says_what_replacing_the_secret_breaks(client, hook, edit):
    body = text(client.get(f"/webhooks/{hook.id}/edit"))
    [box] = inputs(body, "change_secret")
    assert 'type="checkbox"' in box and "checked" not in box
    body = " ".join(body.split())
    assert "Replace the current secret with the one typed above" in body
    assert "a handler that verifies with the current secret rejects every delivery until it is updated" in body
    assert "signs Send test request without being saved" in body


def test_saving_a_typed_secret_without_the_box_changes_nothing_and_says_so(client, hook, edit):
    """A secret typed to try Send test request, then Save: the secret field says why nothing was
    saved, and keeps what was typed so that the box can be ticked or the field emptied."""
    before = snapshot(hook.id)
    response = edit(jwt_secret="  typed-for-a-test  ", label="Would change")
    assert response.status_code == 400
    assert field_errors(response, "jwt_secret") == [forms.SECRET_NOT_CONFIRMED]
    assert 'aria-invalid="true"' in inputs(text(response), "jwt_secret")[0]
    assert input_value(text(response), "jwt_secret") == "typed-for-a-test"  # kept (trimmed by the rule)
    assert snapshot(hook.id) == before


def test_saving_a_typed_secret_with_the_box_ticked_replaces_it(client, hook, edit):
    assert edit(jwt_secret="  typed-new-secret  ", change_secret="y").status_code == 302
    assert stored(hook.id).jwt_secret == "typed-new-secret"
    flashed = text(client.get(f"/webhooks/{hook.id}"))
    assert "Deliveries are now signed with the new JWT secret: a handler that verifies with the old one" in flashed


def test_the_box_ticked_without_a_secret_changes_nothing(hook, edit):
    before = snapshot(hook.id)
    response = edit(jwt_secret="", change_secret="y", label="Would change")
    assert response.status_code == 400
    assert field_errors(response, "jwt_secret") == [forms.NOTHING_TO_REPLACE]
    assert snapshot(hook.id) == before


def test_header_rows_can_be_added_and_removed_without_saving(hook, edit):
    before = snapshot(hook.id)
    body = text(edit(action="add_header"))
    assert [input_value(body, f"headers-{i}-name") for i in range(2)] == ["X-Api-Key", ""]
    rows = {"headers-1-name": "X-Two", "headers-1-value": "2"}
    body = text(edit(action="remove_header-0", **rows))
    assert (input_value(body, "headers-0-name"), input_value(body, "headers-0-value")) == ("X-Two", "2")
    assert re.search(r'name="headers-1-name"', body) is None
    assert snapshot(hook.id) == before
    edit(**{"headers-0-name": "", "headers-0-value": ""})
    assert stored(hook.id).headers == {}
