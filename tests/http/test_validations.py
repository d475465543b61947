"""Synchronous validation webhooks (docs/architecture.md, "Validations"): ``POST
/public/v1/validations`` and Trigger Now.

The handler is a real HTTP server following Connect's dynamic-validation pattern: it verifies the
JWT with PyJWT and the webhook's secret, reads the draft request, sets ``value_error`` on every
ordering parameter whose value is not all digits and answers 400 with the whole request, or 200
with the request unchanged.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.conftest import make_webhook
from tests.engine import api_token
from webhookapp.engine import runtime
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

URL = "/public/v1/validations"
HOOKS = "/public/v1/notifications/webhooks"
# A draft purchase request shaped like the platform's, with our own values.
DRAFT = Path(__file__).resolve().parents[1] / "data" / "draft-purchase-request.json"
SECRET = "validation-secret-" * 3
DIGITS_ONLY = "Only digits are allowed."


class ValidationHandler:
    """``mode``: validate (the pattern above), slow, error (500), text (200 without JSON)."""

    def __init__(self) -> None:
        self.secret, self.mode, self.received, self.claims = SECRET, "validate", [], []
        self.closed = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(json.loads(body))
                status, answer = outer.answer(self.headers.get("Authorization", ""), json.loads(body))
                if outer.mode == "slow":
                    outer.closed.wait(60)  # answers only when the test is over
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the caller gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/validate"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, authorization: str, request: dict) -> tuple[int, Any]:
        try:
            claims = jwt.decode(authorization.removeprefix("Bearer "), self.secret, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            return 401, {"error": f"invalid token: {exc}"}
        self.claims.append(claims)
        if self.mode == "error":
            return 500, {"error": "boom"}
        if self.mode == "text":
            return 200, b"<html>validated</html>"
        if self.mode == "list":
            return 200, [1, 2]
        answer, valid = copy.deepcopy(request), True
        for param in answer.get("asset", {}).get("params", []):
            if not str(param.get("value", "")).isdigit():
                param["value_error"], valid = DIGITS_ONLY, False
        return (200, answer) if valid else (400, answer)

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[ValidationHandler]:
    handler = ValidationHandler()
    yield handler
    handler.close()


@pytest.fixture
def draft() -> dict:
    return json.loads(DRAFT.read_text())


@pytest.fixture
def hook_fields(server) -> dict[str, Any]:
    return {"label": "Draft check", "type_key": "fulfillment_request.validator", "external_url": server.url,
            "jwt_secret": SECRET}  # fmt: skip


def validate(client, token: str, body: Any):
    return client.post(URL, json=body, headers={"Authorization": f"ApiKey {token}"})


def stats(hook: Webhook) -> tuple[int, int, int, int]:
    db.session.expire_all()
    row = db.session.get(Webhook, hook.id)
    return row.events_count, row.triggers_count, row.success_count, row.failure_count


def test_a_valid_request_round_trips_unchanged(client, token, vendor, hook, server, draft):
    response = validate(client, token, {"type": "validator", "product_id": vendor.products[0].id, "request": draft})
    assert response.status_code == 200
    assert response.get_json() == draft == server.received[0]
    [claims] = server.claims
    assert (claims["webhook_id"], claims["product_id"], claims["account_id"]) == (
        hook.id, vendor.products[0].id, vendor.account.id)  # fmt: skip
    assert claims["exp"] > time.time()


def test_an_invalid_parameter_comes_back_with_value_error_and_400(client, token, vendor, hook, server, draft):
    draft["asset"]["params"][0]["value"] = "12a45"
    response = validate(client, token, {"type": "validator", "product_id": vendor.products[0].id, "request": draft})
    assert response.status_code == 400
    expected = copy.deepcopy(draft)
    expected["asset"]["params"][0]["value_error"] = DIGITS_ONLY
    assert response.get_json() == expected


def test_statistics_and_attempt_log_count_validations(client, token, vendor, hook, server, draft):
    body = {"type": "validator", "product_id": vendor.products[0].id, "request": draft}
    assert validate(client, token, body).status_code == 200
    draft["asset"]["params"][0]["value"] = "bad"
    assert validate(client, token, body).status_code == 400
    server.mode = "error"
    assert validate(client, token, body).status_code == 502
    assert stats(hook) == (3, 3, 2, 1)  # a 400 with value errors is an answer, so a success
    attempts = db.session.scalars(db.select(Attempt).filter_by(webhook_id=hook.id).order_by(Attempt.id)).all()
    assert [(a.kind, a.success, a.response_status) for a in attempts] == [
        ("validation", True, 200), ("validation", True, 400), ("validation", False, 500)]  # fmt: skip
    assert json.loads(attempts[0].request_body) == server.received[0]
    assert attempts[0].request_headers["Authorization"].endswith(".REDACTED")
    listed = client.get(f"{HOOKS}/{hook.id}/attempts?eq(kind,validation)", headers={"Authorization": f"ApiKey {token}"})
    assert listed.headers["Content-Range"] == "items 0-2/3"


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("slow", "No answer within 0.5 s"),
        ("error", "HTTP 500"),
        ("text", "without a JSON object"),
        ("list", "without a JSON object"),
    ],
)
def test_a_failing_handler_is_a_502_with_a_clear_error(app, client, token, vendor, hook, server, draft, mode, fragment):
    app.config["WEBHOOK_VALIDATION_TIMEOUT"] = 0.5
    runtime.install(app)  # a runtime of its own: its validation sender is built with this timeout
    server.mode = mode
    started = time.monotonic()
    response = validate(client, token, {"type": "validator", "product_id": vendor.products[0].id, "request": draft})
    assert time.monotonic() - started < 10 * 0.5  # a slow handler is given up on near the timeout
    assert response.status_code == 502
    body = response.get_json()
    assert body["error_code"] == "VAL_502" and any(fragment in error for error in body["errors"]), body
    assert stats(hook) == (1, 1, 0, 1)


def test_a_handler_refusing_our_jwt_is_a_502_not_its_401(client, token, vendor, hook, server, draft):
    """Only 2xx, 400 and 422 are answers; a handler's 401 must not pass for our own "bad token" 401."""
    server.secret = "not-the-webhook-secret-" * 2
    response = validate(client, token, {"type": "validator", "product_id": vendor.products[0].id, "request": draft})
    assert response.status_code == 502
    assert response.get_json() == {"error_code": "VAL_502", "errors": ["The handler answered HTTP 401."]}
    assert server.claims == []


@pytest.mark.parametrize("setup", ["none", "other_type", "disabled", "other_product", "unknown", "foreign"])
def test_no_enabled_webhook_or_no_such_product_is_a_404(client, token, vendor, other_vendor, server, draft, setup):
    product_id = vendor.products[0].id
    if setup == "other_type":
        make_webhook(vendor, type_key="fulfillment_request.inquiring_validator", external_url=server.url)
    elif setup == "disabled":
        make_webhook(vendor, type_key="fulfillment_request.validator", external_url=server.url, active=False)
    elif setup == "other_product":
        make_webhook(vendor, type_key="fulfillment_request.validator", external_url=server.url,
                     product_id=vendor.products[1].id)  # fmt: skip
    elif setup == "unknown":
        product_id = "PRD-000-000-000"
    elif setup == "foreign":
        product_id = other_vendor.products[0].id
    response = validate(client, token, {"type": "validator", "product_id": product_id, "request": draft})
    assert response.status_code == 404
    assert response.get_json()["error_code"] == ("PRD_404" if setup in ("unknown", "foreign") else "WH_404")
    assert server.received == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"type": "event"}, "'type' must be a validation type"),
        ({"type": "nonsense"}, "'type' must be a validation type"),
        ({"request": None}, "'request' is required"),
        ({"request": [1, 2]}, "'request' is required, as a JSON object"),
        ({"product_id": 7}, "'product_id' is required"),
        ({"priority": "high"}, "Unknown field 'priority'"),
    ],
)
def test_a_bad_body_is_a_400(client, token, vendor, hook, server, draft, change, fragment):
    body = {key: value for key, value in
            {"type": "validator", "product_id": vendor.products[0].id, "request": draft, **change}.items()
            if value is not None}  # fmt: skip
    response = validate(client, token, body)
    assert response.status_code == 400
    assert any(fragment in error for error in response.get_json()["errors"]), response.get_json()
    assert server.received == []


def test_a_platform_token_reaches_any_vendors_validation_webhook(client, vendor, other_vendor, hook, server, draft):
    token = api_token(other_vendor.account, platform=True)
    response = validate(client, token, {"type": "validator", "product_id": vendor.products[0].id, "request": draft})
    assert response.status_code == 200 and response.get_json() == draft


def test_a_distributor_cannot_call_a_vendors_validation_webhook(client, vendor, distributor, hook, server, draft):
    token = api_token(distributor.account)
    response = validate(client, token, {"type": "validator", "product_id": vendor.products[0].id, "request": draft})
    assert response.status_code == 404
    assert server.received == [] and stats(hook) == (0, 0, 0, 0)


def test_trigger_now_page_sends_the_sample_and_shows_the_answer(client, auth, vendor, hook, server):
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/trigger")
    assert response.status_code == 302
    attempt = db.session.scalars(db.select(Attempt).filter_by(webhook_id=hook.id)).one()
    assert response.headers["Location"].endswith(f"/webhooks/{hook.id}/attempts/{attempt.id}")
    [sample] = server.received
    assert sample["asset"]["product"]["id"] == vendor.products[0].id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "answered the sample request with HTTP 400" in page
    assert "HTTP <strong>400</strong>" in page and DIGITS_ONLY in page
    assert (attempt.kind, attempt.success, json.loads(attempt.response_body)["asset"]["params"][0]["value_error"]) == (
        "validation", True, DIGITS_ONLY)  # fmt: skip


def test_trigger_now_api_returns_the_validation_answer(client, token, vendor, hook, server):
    response = client.post(f"{HOOKS}/{hook.id}/trigger", headers={"Authorization": f"ApiKey {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["webhook"]["id"] == hook.id and body["webhook"]["stats"]["triggers"] == 1
    validation = body["validation"]
    assert (validation["answered"], validation["status"], validation["error"]) == (True, 400, None)
    expected = copy.deepcopy(server.received[0])
    expected["asset"]["params"][0]["value_error"] = DIGITS_ONLY
    assert validation["body"] == expected
    assert db.session.get(Attempt, validation["attempt_id"]).webhook_id == hook.id


def test_trigger_now_on_a_disabled_validation_webhook_is_a_400(client, token, vendor, hook, server):
    client.put(f"{HOOKS}/{hook.id}", json={"active": False}, headers={"Authorization": f"ApiKey {token}"})
    response = client.post(f"{HOOKS}/{hook.id}/trigger", headers={"Authorization": f"ApiKey {token}"})
    assert response.status_code == 400
    assert server.received == []


@pytest.mark.parametrize(
    ("type_key", "expected"),
    [
        ("fulfillment_request.validator", ("purchase", "draft", None)),
        ("fulfillment_request.inquiring_validator", ("purchase", "inquiring", None)),
        ("fulfillment_request.change_validator", ("change", "draft", None)),
        ("fulfillment_request.change_inquiring_validator", ("change", "inquiring", None)),
        ("tier_config_request.draft_tcr_t1_val", ("setup", "draft", 1)),
        ("tier_config_request.tcr_setup_t2_inq_val", ("setup", "inquiring", 2)),
        ("tier_config_request.tcr_update_t1_validator", ("update", "draft", 1)),
        ("tier_config_request.tcr_update_t2_inq_val", ("update", "inquiring", 2)),
    ],
)
def test_trigger_now_sends_a_sample_of_the_kind_the_type_validates(client, vendor, handler, type_key, expected):
    product = vendor.products[1]  # Dynamic Validation: every validation type is available
    hook = make_webhook(vendor, type_key=type_key, product_id=product.id,
                        external_url=handler.behave(f"/{type_key}", status=200))  # fmt: skip
    response = client.post(f"/public/v1/notifications/webhooks/{hook.id}/trigger",
                           headers={"Authorization": f"ApiKey {api_token(vendor.account)}"})  # fmt: skip
    assert response.status_code == 200
    [received] = handler.wait_for(f"/{type_key}")
    sample = received.json()
    kind, status, tier = expected
    assert (sample["type"], sample["status"]) == (kind, status)
    holder = sample["configuration"] if tier else sample["asset"]
    assert holder["product"] == {"id": product.id, "name": product.name}
    assert holder["params"][0]["id"] == "sample_parameter"
    if tier:
        assert sample["configuration"]["tier_level"] == tier and sample["id"].startswith("TCR-")
    else:
        assert sample["id"].startswith("PR-") and sample["asset"]["items"]
