"""What a handler receives (docs/architecture.md, "Delivery contract"), through ingest, Redis, an
RQ worker and real HTTP."""

from __future__ import annotations

import re
from datetime import datetime

import jwt
import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from webhookapp.engine.signing import PAYLOAD_KEYS
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")


def test_post_delivery_matches_the_contract(app, client, vendor, handler):
    url = handler.behave("/hook")
    hook = make_webhook(vendor, external_url=url, headers={"X-Api-Key": "k-123"}, data={"purpose": "demo"})
    token = api_token(vendor.account)
    status, body = post_event(
        client, token, object_class="fulfillment_request", product_id=hook.product_id, api_url="https://api.test/v1/"
    )
    assert status == 202 and body["webhooks"] == [hook.id] and body["duplicate"] is False
    run_worker(app)

    [request] = handler.wait_for("/hook")
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("webhookapp/")
    assert request.headers["X-Api-Key"] == "k-123"
    payload = request.json()
    assert tuple(payload) == PAYLOAD_KEYS
    assert payload["webhook_id"] == hook.id
    assert payload["webhook_name"] == "Fulfillment hook"
    assert payload["object_class"] == "fulfillment_request"
    assert payload["account_id"] == vendor.account.id
    assert payload["product_id"] == hook.product_id
    assert payload["api_url"] == "https://api.test/v1/"
    assert ISO.match(payload["triggered_at"])
    assert payload["last_success_at"] is None and payload["last_failure_at"] is None
    assert payload["processing_timeout"] == 600
    assert payload["data"] == {"purpose": "demo"}

    scheme, _, token_text = request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token_text) == {"typ": "JWT", "alg": "HS256"}
    claims = jwt.decode(token_text, hook.jwt_secret, algorithms=["HS256"])
    assert claims.pop("exp") == int(datetime.fromisoformat(payload["triggered_at"]).timestamp()) + 600
    assert claims == payload
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token_text, "another secret that is long enough for HS256", algorithms=["HS256"])


def test_get_delivery_has_no_body_and_the_jwt_carries_everything(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/get"), http_method="GET")
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    [request] = handler.wait_for("/get")
    assert request.method == "GET" and request.body == b""
    assert "Content-Type" not in request.headers
    claims = jwt.decode(request.headers["Authorization"].split(" ", 1)[1], hook.jwt_secret, algorithms=["HS256"])
    assert claims["webhook_id"] == hook.id and claims["data"] == {}
    assert claims["api_url"] == "http://localhost/public/v1/"  # this service's own API, for calling back


def test_a_custom_header_cannot_replace_authorization(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/h"))
    # The forms and the API refuse it; write it behind their back to prove the sender wins anyway.
    db.session.get(Webhook, hook.id).headers = {"Authorization": "Basic evil", "X-Other": "1"}
    db.session.commit()
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    [request] = handler.wait_for("/h")
    assert request.headers["Authorization"].startswith("Bearer ey")
    assert request.headers["X-Other"] == "1"


def test_the_next_delivery_reports_the_previous_outcome(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/twice"))
    token = api_token(vendor.account)
    for expected in (1, 2):
        post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
        run_worker(app)
        handler.wait_for("/twice", expected)
    first, second = (r.json() for r in handler.requests_to("/twice"))
    assert first["last_success_at"] is None
    assert second["last_success_at"] == first["triggered_at"] or ISO.match(second["last_success_at"])
    db.session.expire_all()
    stored = db.session.get(Webhook, hook.id)
    assert (stored.events_count, stored.triggers_count, stored.success_count) == (2, 2, 2)
    assert stored.last_success_info["status"] == 200


@pytest.mark.parametrize("name", ["user-agent", "AUTHORIZATION", "content-TYPE"])
def test_the_recorded_request_headers_are_those_sent(app, client, vendor, handler, name):
    """A custom header that differs from one of ours only in case is not sent, nor recorded."""
    hook = make_webhook(vendor, external_url=handler.behave("/case"))
    db.session.get(Webhook, hook.id).headers = {name: "mine", "X-Other": "1"}  # behind the rules' back
    db.session.commit()
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    [request] = handler.wait_for("/case")
    attempt = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id)).one()
    sent = {key.lower(): value for key, value in request.headers.items() if key.lower() in {name.lower(), "x-other"}}
    recorded = {key.lower(): value for key, value in attempt.request_headers.items()}
    assert len(recorded) == len(attempt.request_headers)  # no name recorded twice in two cases
    assert {key: recorded[key] for key in sent} == {
        key: value if key != "authorization" else recorded[key] for key, value in sent.items()
    }
    assert sent[name.lower()] != "mine" and recorded[name.lower()] != "mine"
