"""``/public/v1/notifications/webhooks`` (docs/architecture.md, "Management API"): create, get,
update, delete, trigger, attempts,
the same field rules as the wizard, JSON errors, and strict tenant isolation."""

from __future__ import annotations

import pytest

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, run_worker
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import tokens

URL = "/public/v1/notifications/webhooks"
SECRET = "s3cret-" * 6


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {token}"}


def assert_error(response, status: int, error_code: str, *fragments: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error_code", "errors"} and body["error_code"] == error_code, body
    assert body["errors"] and all(isinstance(message, str) and message for message in body["errors"])
    for fragment in fragments:
        assert any(fragment in message for message in body["errors"]), (fragment, body["errors"])


def webhook_count() -> int:
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count()).select_from(Webhook))


@pytest.fixture
def body(vendor, handler) -> dict:
    """A create body with every writable field, product given flat."""
    return {
        "label": "Orders", "description": "Purchase queue", "active": True, "product_id": vendor.products[0].id,
        "object_class": "fulfillment_request", "type": "event", "http_method": "POST",
        "external_url": handler.url + "/orders", "jwt_secret": SECRET, "headers": {"X-Team": "ops"},
        "data": {"purpose": "demo", "nested": {"n": 1}},
    }  # fmt: skip


def test_create_with_every_field_then_get(client, token, body, vendor):
    created = client.post(URL, json=body, headers=auth(token))
    assert created.status_code == 201
    hook = created.get_json()
    for name in ("label", "description", "active", "object_class", "type", "http_method", "external_url",
                 "jwt_secret", "headers", "data"):  # fmt: skip
        assert hook[name] == body[name], name
    assert hook["id"].startswith("WH-") and hook["status"] == "enabled"
    assert hook["product"] == {"id": vendor.products[0].id, "name": "Acme Cloud"}
    assert hook["account"] == {"id": vendor.account.id, "name": "Acme Vendor"}
    assert hook["stats"] == {"events": 0, "trigger_now_events": 0, "triggers": 0, "success_triggers": 0,
                             "failure_triggers": 0, "failure_since_last_success": 0}  # fmt: skip
    assert hook["last_event"] is hook["last_success"] is hook["last_failure"] is None
    fetched = client.get(f"{URL}/{hook['id']}", headers=auth(token))
    assert fetched.status_code == 200 and fetched.get_json() == hook


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_create_with_connect_product_object_generates_a_secret(client, token, body, vendor, secret):
    del body["product_id"]
    body["product"] = {"id": vendor.products[1].id, "name": "ignored"}
    body.pop("jwt_secret") if secret is None else body.update(jwt_secret=secret)
    hook = client.post(URL, json=body, headers=auth(token)).get_json()
    assert hook["product"] == {"id": vendor.products[1].id, "name": "Acme Dynamic"}
    assert len(hook["jwt_secret"].strip()) >= 32


def test_put_is_partial_and_product_and_type_are_fixed(client, token, vendor):
    hook = make_webhook(vendor, label="Before", description="kept", headers={"X-A": "1"})
    answer = client.put(f"{URL}/{hook.id}", json={"label": "After", "active": False}, headers=auth(token))
    assert answer.status_code == 200
    updated = answer.get_json()
    assert (updated["label"], updated["active"], updated["status"]) == ("After", False, "disabled")
    assert (updated["description"], updated["headers"]) == ("kept", {"X-A": "1"})
    for change in ({"product": {"id": vendor.products[1].id}}, {"product_id": vendor.products[1].id},
                   {"object_class": "usage_file", "type": "event"},
                   {"object_class": "fulfillment_request", "type": "validator"}):  # fmt: skip
        response = client.put(f"{URL}/{hook.id}", json={**change, "label": "Changed"}, headers=auth(token))
        assert_error(response, 400, "VAL_001", "cannot be changed")
    assert client.get(f"{URL}/{hook.id}", headers=auth(token)).get_json() == updated


def test_get_then_put_the_whole_object_back_unchanged(client, token, vendor):
    hook = make_webhook(vendor, headers={"X-A": "1"}, data={"k": [1, 2]})
    returned = client.get(f"{URL}/{hook.id}", headers=auth(token)).get_json()
    answer = client.put(f"{URL}/{hook.id}", json=returned, headers=auth(token))
    assert answer.status_code == 200, answer.get_json()
    assert {**answer.get_json(), "modified_at": None} == {**returned, "modified_at": None}


def test_put_with_only_the_unchanged_type_is_accepted(client, token, vendor):
    hook = make_webhook(vendor)
    assert client.put(f"{URL}/{hook.id}", json={"type": "event"}, headers=auth(token)).status_code == 200


def test_delete_then_404(client, token, vendor):
    hook_id = make_webhook(vendor).id
    response = client.delete(f"{URL}/{hook_id}", headers=auth(token))
    assert response.status_code == 204 and response.data == b""
    for method in ("get", "put", "delete"):
        assert_error(getattr(client, method)(f"{URL}/{hook_id}", json={}, headers=auth(token)), 404, "WH_404")
    assert db.session.get(Webhook, hook_id) is None


def test_trigger_counts_an_event_and_a_worker_delivers(app, client, token, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/hook", status=200))
    answer = client.post(f"{URL}/{hook.id}/trigger", headers=auth(token))
    assert answer.status_code == 200
    assert answer.get_json()["stats"]["events"] == 1
    assert answer.get_json()["earliest_possible_trigger"] is not None
    run_worker(app)
    assert handler.wait_for("/hook")[0].json()["webhook_id"] == hook.id
    db.session.expire_all()  # the worker wrote through its own session; the test client shares ours
    stats = client.get(f"{URL}/{hook.id}", headers=auth(token)).get_json()["stats"]
    assert (stats["triggers"], stats["success_triggers"], stats["failure_triggers"]) == (1, 1, 0)
    attempts = client.get(f"{URL}/{hook.id}/attempts", headers=auth(token))
    assert attempts.headers["Content-Range"] == "items 0-0/1"
    [attempt] = attempts.get_json()
    assert (attempt["kind"], attempt["success"], attempt["response"]["status"]) == ("trigger", True, 200)
    assert attempt["request"]["headers"]["Authorization"].endswith(".REDACTED")


def test_trigger_of_a_disabled_webhook_is_a_400(app, client, token, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/off"), active=False)
    assert_error(client.post(f"{URL}/{hook.id}/trigger", headers=auth(token)), 400, "VAL_001", "disabled")
    run_worker(app)
    assert client.get(f"{URL}/{hook.id}", headers=auth(token)).get_json()["stats"]["events"] == 0
    assert handler.requests_to("/off") == []


def test_attempts_are_paginated_with_content_range(client, token, vendor, handler):
    hook = make_webhook(vendor, type_key="fulfillment_request.validator", external_url=handler.behave("/v"))
    for _ in range(12):
        assert client.post(f"{URL}/{hook.id}/trigger", headers=auth(token)).status_code == 200
    ids = []
    for offset, expected in ((0, "items 0-4/12"), (5, "items 5-9/12"), (10, "items 10-11/12")):
        page = client.get(f"{URL}/{hook.id}/attempts?limit=5&offset={offset}", headers=auth(token))
        assert page.headers["Content-Range"] == expected
        ids += [attempt["id"] for attempt in page.get_json()]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 12  # newest first
    failures = client.get(f"{URL}/{hook.id}/attempts?eq(success,false)&limit=0", headers=auth(token))
    assert failures.headers["Content-Range"].endswith("/0")


@pytest.mark.parametrize(
    ("who", "change", "fragment"),
    [
        ("distributor", {"type": "validator"}, "vendors only"),
        ("vendor", {"type": "change_validator"}, "Dynamic Validation"),
        ("vendor", {"type": "no_such_type"}, "Choose one of the listed types"),
        ("vendor", {"object_class": None, "type": None}, "'object_class' and 'type' are required"),
        ("vendor", {"product_id": "PRD-000-000-000"}, "product_id: Choose one of the products"),
        ("vendor", {"product_id": "PRD-\x00"}, "product_id: Choose one of the products"),  # PostgreSQL refuses NUL
        ("vendor", {"external_url": "ftp://handler.example.com/"}, "http:// or https://"),
        ("vendor", {"external_url": "not a url"}, "Endpoint URL"),
        ("vendor", {"external_url": "https://" + "a" * 4100 + ".test/"}, "at most 4096"),
        ("vendor", {"headers": {"Authorization": "Basic x"}}, "cannot be overridden"),
        ("vendor", {"headers": {"content-type": "text/plain"}}, "cannot be overridden"),
        ("vendor", {"headers": {"X-A": "one\r\nX-B: two"}}, "line breaks"),
        ("vendor", {"headers": {"X-A": "one\ntwo"}}, "line breaks"),
        ("vendor", {"headers": {"X-A": 5}}, "values must be strings"),
        ("vendor", {"headers": ["X-A", "1"]}, "'headers' must be an object"),
        ("vendor", {"data": [1, 2]}, "'data' must be an object"),
        ("vendor", {"data": "text"}, "'data' must be an object"),
        ("vendor", {"label": ""}, "Name is required"),
        ("vendor", {"label": "x" * 101}, "at most 100"),
        ("vendor", {"label": 5}, "'label' must be a string"),
        ("vendor", {"active": "yes"}, "'active' must be true or false"),
        ("vendor", {"http_method": "PATCH"}, "GET or POST"),
        ("vendor", {"jwt_secret": "x" * 101}, "at most 100"),
        ("vendor", {"colour": "red"}, "Unknown field 'colour'"),
        ("vendor", {"product": {"id": "PRD-1", "owner": "me"}}, "Unknown field 'product'"),
    ],
)
def test_create_refuses_what_the_wizard_refuses(client, body, vendor, distributor, who, change, fragment):
    tenant = {"vendor": vendor, "distributor": distributor}[who]
    payload = {key: value for key, value in {**body, **change}.items() if value is not None}
    before = webhook_count()
    assert_error(client.post(URL, json=payload, headers=auth(api_token(tenant.account))), 400, "VAL_001", fragment)
    assert webhook_count() == before


def test_a_distributor_creates_event_webhooks_on_any_product(client, body, distributor):
    assert client.post(URL, json=body, headers=auth(api_token(distributor.account))).status_code == 201


@pytest.mark.parametrize("method", ["post", "put"])
def test_malformed_bodies(client, token, body, vendor, method):
    url = URL if method == "post" else f"{URL}/{make_webhook(vendor).id}"
    send = getattr(client, method)
    assert_error(send(url, data="{bad", content_type="application/json", headers=auth(token)), 400, "REQ_400")
    assert_error(send(url, json=[body], headers=auth(token)), 400, "VAL_001", "JSON object")
    assert_error(send(url, data="label=x", content_type="application/x-www-form-urlencoded",
                      headers=auth(token)), 415, "REQ_415")  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ""), ("post", ""), ("get", "/{id}"), ("put", "/{id}"), ("delete", "/{id}"), ("post", "/{id}/trigger"),
     ("get", "/{id}/attempts")],
)  # fmt: skip
def test_every_route_needs_a_valid_token(client, vendor, method, path):
    hook = make_webhook(vendor, label="Untouched")
    revoked_row, revoked = tokens.create_token(vendor.account, "revoked")
    tokens.revoke_token(revoked_row)
    for headers in ({}, auth("whk_not-a-token"), auth(revoked), {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = getattr(client, method)(URL + path.format(id=hook.id), json={"label": "x"}, headers=headers)
        assert_error(response, 401, "AUTH_001")
    assert (
        client.get(f"{URL}/{hook.id}", headers={"Authorization": f"Bearer {api_token(vendor.account)}"}).json["label"]
        == "Untouched"
    )


@pytest.mark.parametrize("intruder", ["other_vendor", "distributor"])
def test_another_accounts_webhook_is_404_everywhere_and_unchanged(request, client, vendor, handler, intruder):
    tenant = request.getfixturevalue(intruder)
    token = api_token(tenant.account)
    event = make_webhook(vendor, label="Mine", external_url=handler.behave("/mine"))
    validator = make_webhook(vendor, type_key="fulfillment_request.validator", external_url=handler.url + "/mine")
    for hook in (event, validator):
        for method, path in (("get", ""), ("put", ""), ("delete", ""), ("post", "/trigger"), ("get", "/attempts")):
            response = getattr(client, method)(f"{URL}/{hook.id}{path}", json={"label": "Theirs"}, headers=auth(token))
            assert_error(response, 404, "WH_404")
    listed = client.get(f"{URL}?in(id,({event.id},{validator.id}))", headers=auth(token))
    assert listed.get_json() == [] and listed.headers["Content-Range"].endswith("/0")
    owner = api_token(vendor.account)
    for hook in (event, validator):
        mine = client.get(f"{URL}/{hook.id}", headers=auth(owner)).get_json()
        assert mine["stats"]["events"] == mine["stats"]["triggers"] == 0
    assert client.get(f"{URL}/{event.id}", headers=auth(owner)).get_json()["label"] == "Mine"
    assert handler.requests_to("/mine") == []


def test_the_list_shows_only_the_tokens_account(client, vendor, other_vendor):
    third = make_tenant("vendor", "Third", "third@third.test", [("Third Product", False)])
    mine = {make_webhook(vendor, label=f"mine {n}").id for n in range(3)}
    theirs = make_webhook(other_vendor).id
    make_webhook(third)
    listed = client.get(URL, headers=auth(api_token(vendor.account)))
    assert {hook["id"] for hook in listed.get_json()} == mine
    assert listed.headers["Content-Range"] == "items 0-2/3"
    assert [hook["id"] for hook in client.get(URL, headers=auth(api_token(other_vendor.account))).json] == [theirs]
