"""A handler calls back (docs/architecture.md, "Following events"): a real worker delivers to a
real handler, and the JWT the handler received reads that webhook's events, and nothing else,
until its ``exp``."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlsplit

import jwt
import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.openapi_conformance import assert_conforms
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import webhook_changes as service


@pytest.fixture
def delivered(app, client, vendor, handler):
    """Two webhooks of one account on two products, two events for the first and one for the
    second, delivered by a worker; the JWT the first one's handler received."""
    orders = make_webhook(vendor, label="Orders", external_url=handler.behave("/orders"))
    dynamic = make_webhook(vendor, label="Dynamic", external_url=handler.behave("/dynamic"),
                           product_id=vendor.products[1].id)  # fmt: skip
    token = api_token(vendor.account)
    events = [
        post_event(client, token, object_class="fulfillment_request", product_id=orders.product_id, id=f"o-{n}")[1]
        for n in range(2)
    ]
    other = post_event(client, token, object_class="fulfillment_request", product_id=dynamic.product_id)[1]
    run_worker(app)
    [request] = handler.wait_for("/orders")
    handler.wait_for("/dynamic")
    received = request.headers["Authorization"].removeprefix("Bearer ")
    return orders, dynamic, [event["id"] for event in events], other["id"], received, request.json()


def call(client, url: str, jwt_text: str, method: str = "GET"):
    """A request to ``url`` (absolute, as built from ``api_url``) with the delivery JWT."""
    parts = urlsplit(url)
    return client.open(parts.path, query_string=parts.query, method=method,
                       headers={"Authorization": f"Bearer {jwt_text}"})  # fmt: skip


def test_the_handler_reads_its_own_webhook_s_events_with_the_jwt_it_received(client, delivered):
    orders, dynamic, mine, theirs, received, payload = delivered
    assert payload["api_url"] == "http://localhost/public/v1/"  # the app's own public API root
    listed = call(client, f"{payload['api_url']}events?webhook.id={payload['webhook_id']}&ordering=-created_at"
                          "&limit=10", received)  # fmt: skip
    assert listed.status_code == 200, listed.get_json()
    assert_conforms(listed, "/events", "get")
    assert [event["id"] for event in listed.get_json()] == mine[::-1]
    assert all(event["webhooks"] == [orders.id] for event in listed.get_json())
    assert listed.headers["Content-Range"] == "items 0-1/2"
    assert [e["id"] for e in call(client, f"{payload['api_url']}events", received).get_json()] == mine[::-1]

    one = call(client, f"{payload['api_url']}events/{mine[0]}", received)
    assert one.status_code == 200 and one.get_json()["external_id"] == "o-0"
    # The same account's other webhook: its events are not this handler's business.
    assert call(client, f"{payload['api_url']}events/{theirs}", received).status_code == 404
    assert call(client, f"{payload['api_url']}events?webhook.id={dynamic.id}", received).get_json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "notifications/webhooks"),
        ("GET", "notifications/webhooks/{webhook_id}"),
        ("POST", "notifications/webhooks/{webhook_id}/trigger"),
        ("GET", "notifications/webhooks/{webhook_id}/attempts"),
        ("POST", "events"),
        ("POST", "validations"),
    ],
)
def test_every_other_endpoint_refuses_the_jwt(client, delivered, method, path):
    orders, _dynamic, _mine, _theirs, received, payload = delivered
    refused = call(client, payload["api_url"] + path.format(webhook_id=orders.id), received, method)
    assert refused.status_code == 401 and refused.get_json()["error_code"] == "AUTH_001"
    db.session.expire_all()
    assert db.session.get(Webhook, orders.id).events_count == 2  # nothing was done


def test_an_expired_jwt_is_refused_with_a_clear_message(app, client, vendor, handler):
    app.config["WEBHOOK_PROCESSING_TIMEOUT"] = 1  # exp = triggered_at (whole seconds) + 1
    hook = make_webhook(vendor, external_url=handler.behave("/soon"))
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    [request] = handler.wait_for("/soon")
    received = request.headers["Authorization"].removeprefix("Bearer ")
    expires = jwt.decode(received, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    refused = call(client, request.json()["api_url"] + "events", received)
    assert refused.status_code == 401
    assert_conforms(refused, "/events", "get")
    [message] = refused.get_json()["errors"]
    assert message.startswith("The delivery JWT expired at ") and "exp" in message


def test_forged_and_unsigned_jwts_are_refused(client, delivered):
    _orders, _dynamic, _mine, _theirs, received, payload = delivered
    claims = jwt.decode(received, options={"verify_signature": False})
    header, body, signature = received.split(".")
    forged = [
        jwt.encode(claims, "a guessed secret that is long enough for HS256", algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),  # alg: none, no signature
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{body}.",
        f"{_b64({'alg': 'HS512', 'typ': 'JWT'})}.{body}.{signature}",
        # Another webhook's id under this webhook's signature: the claims no longer match it.
        f"{header}.{_b64({**claims, 'webhook_id': 'WH-000-000-000'})}.{signature}",
        f"{header}.{_b64({k: v for k, v in claims.items() if k != 'exp'})}.{signature}",
        "not.a.jwt",
    ]
    for token in forged:
        refused = call(client, payload["api_url"] + "events", token)
        assert refused.status_code == 401, token
        assert refused.get_json()["error_code"] == "AUTH_001"
    assert call(client, payload["api_url"] + "events", received).status_code == 200


def test_a_new_secret_or_a_deleted_webhook_ends_the_jwt(client, delivered):
    orders, _dynamic, _mine, _theirs, received, payload = delivered
    assert call(client, payload["api_url"] + "events", received).status_code == 200
    service.update_webhook(orders, {"jwt_secret": "a brand new secret of the webhook's owner"})
    assert call(client, payload["api_url"] + "events", received).status_code == 401
    service.delete_webhook(db.session.get(Webhook, orders.id))
    assert call(client, payload["api_url"] + "events", received).status_code == 401


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_api_url_defaults_to_this_service_s_public_api_root(monkeypatch, caplog):
    from webhookapp.infra.config import DevelopmentConfig, ProductionConfig
    from webhookapp.infra.crypto import new_key

    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8080")
    development = {"SECRET_KEY": "k", "WEBHOOK_API_URL": ""}
    DevelopmentConfig.finalize(development)
    assert development["WEBHOOK_API_URL"] == "http://0.0.0.0:8080/public/v1/"  # as make run serves it
    keys = new_key()
    configured = {"SECRET_KEY": "k", "WEBHOOK_ENCRYPTION_KEYS": keys}
    configured["WEBHOOK_API_URL"] = "https://hooks.example.com/public/v1/"
    with caplog.at_level("WARNING", logger="webhookapp"):
        ProductionConfig.finalize(configured)
    assert configured["WEBHOOK_API_URL"] == "https://hooks.example.com/public/v1/" and not caplog.records
    production = {"SECRET_KEY": "k", "WEBHOOK_ENCRYPTION_KEYS": keys, "WEBHOOK_API_URL": ""}
    with caplog.at_level("WARNING", logger="webhookapp"):
        ProductionConfig.finalize(production)
    [warning] = caplog.records
    assert "WEBHOOK_API_URL is not set" in warning.getMessage() and production["WEBHOOK_API_URL"] == "/public/v1/"
