"""Odd input and odd handlers fail alone: no 500s, no broken worker loop, nothing left behind."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from datetime import timedelta

import pytest

from tests.conftest import make_webhook
from tests.engine import api_token
from webhookapp.core import rules
from webhookapp.core.times import utcnow
from webhookapp.engine import delivery, runtime, triggers
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

AUTH = "Authorization"


def fresh(hook_id: str) -> Webhook:
    db.session.rollback()
    return db.session.get(Webhook, hook_id)


def test_header_values_outside_latin1_are_refused():
    with pytest.raises(rules.RuleError, match="Latin-1"):
        rules.headers({"X-Note": "price in €"})
    assert rules.headers({"X-Note": "café"}) == {"X-Note": "café"}


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_additional_data_refuses_nan_and_infinity(value):
    with pytest.raises(rules.RuleError, match="NaN or Infinity"):
        rules.data_object({"x": value})


def test_api_refuses_nan_in_data(client, vendor):
    token = api_token(vendor.account)
    fields = {"label": "n", "product_id": vendor.products[0].id, "object_class": "fulfillment_request"}
    fields.update(type="event", http_method="POST", external_url="https://h.example/x", data={"x": "NAN"})
    body = json.dumps(fields).replace('"NAN"', "NaN")
    response = client.post(
        "/public/v1/notifications/webhooks",
        data=body,
        content_type="application/json",
        headers={AUTH: f"ApiKey {token}"},
    )
    assert response.status_code == 400 and "NaN" in " ".join(response.get_json()["errors"])


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_json_bodies_refuse_numbers_json_has_not(client, vendor, number):
    token = api_token(vendor.account)
    body = f'{{"type": "validator", "product_id": "{vendor.products[0].id}", "request": {{"x": {number}}}}}'
    response = client.post(
        "/public/v1/validations", data=body, content_type="application/json", headers={AUTH: f"ApiKey {token}"}
    )
    assert response.status_code == 400 and response.get_json()["error_code"] == "REQ_400"


def test_a_handler_naming_an_unknown_charset_is_still_recorded(app, vendor, handler):
    url = handler.behave("/charset", body=b"ok", content_type="text/plain; charset=bogus")
    hook = make_webhook(vendor, external_url=url)
    triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    delivery.drain(runtime.of(app), budget=5)
    [attempt] = db.session.scalars(db.select(Attempt)).all()
    assert attempt.success and attempt.response_body == "ok"


def test_a_drain_returns_at_its_budget_and_a_hung_send_records_itself(app, vendor, handler):
    hung = threading.Event()
    slow = make_webhook(vendor, label="Slow", external_url=handler.behave("/slow", held_until=hung))
    triggers.make_due_now(slow, count_event=True)
    db.session.commit()
    delivery.drain(runtime.of(app), budget=0.3)  # returns while the handler still holds its answer
    handler.wait_for("/slow")
    assert fresh(slow.id).success_count == 0 and fresh(slow.id).lease_expires_at is not None
    hung.set()
    deadline = time.monotonic() + 10
    while fresh(slow.id).success_count == 0:
        assert time.monotonic() < deadline, "the straggler never recorded its outcome"
        time.sleep(0.05)
    assert fresh(slow.id).lease_expires_at is None


def test_reclaiming_a_disabled_webhooks_lease_leaves_no_trigger(app, vendor):
    hook = make_webhook(vendor, active=False)
    stored = db.session.get(Webhook, hook.id)
    stored.lease_id, stored.lease_attempt = "gone", 1
    stored.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert triggers.reclaim_expired() == 1
    stored = fresh(hook.id)
    assert stored.lease_expires_at is None and stored.next_trigger_at is None


def test_validation_type_of_the_wrong_json_type_is_a_400(client, vendor):
    token = api_token(vendor.account)
    response = client.post(
        "/public/v1/validations",
        json={"type": [], "product_id": vendor.products[0].id, "request": {}},
        headers={AUTH: f"ApiKey {token}"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query", ["offset=99999999999999999999", "like(active,*)", "like(created_at,*)", "limit=10&offset=-1"]
)
def test_out_of_range_or_mistyped_list_queries_are_400s(client, vendor, query):
    token = api_token(vendor.account)
    response = client.get(f"/public/v1/notifications/webhooks?{query}", headers={AUTH: f"ApiKey {token}"})
    assert response.status_code == 400, response.data


def test_a_huge_page_number_is_not_a_500(client, auth, vendor):
    make_webhook(vendor)
    auth.login()
    assert client.get("/webhooks?page=99999999999999999999").status_code == 200


def test_adding_a_header_past_the_limit_shows_an_error(client, auth, vendor):
    hook = make_webhook(vendor)
    auth.login()
    form = {"label": "x", "external_url": "https://h.example/x", "http_method": "POST", "action": "add_header"}
    for index in range(rules.HEADERS_MAX):
        form[f"headers-{index}-name"] = f"X-H{index}"
        form[f"headers-{index}-value"] = "v"
    response = client.post(f"/webhooks/{hook.id}/edit", data=form)
    assert response.status_code == 200
    assert f"At most {rules.HEADERS_MAX} headers are allowed." in response.get_data(as_text=True)


class HeaderTrickler(socketserver.ThreadingTCPServer):
    """Sends its status line one byte every 0.2 s: each read is quick, the answer never ends."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HeaderTrickleHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/slow-headers"

    def handle_error(self, request, client_address) -> None:
        pass  # the sender cutting the connection is the point

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class HeaderTrickleHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100:
            time.sleep(0.2)
            self.request.sendall(bytes([byte]))


def test_a_handler_trickling_its_headers_is_cut_off_at_the_delivery_timeout(app, vendor):
    app.config["WEBHOOK_DELIVERY_TIMEOUT"] = 0.6  # the app's runtime builds its sender at first use
    server = HeaderTrickler()
    try:
        hook = make_webhook(vendor, external_url=server.url)
        triggers.make_due_now(hook, count_event=True)
        db.session.commit()
        delivery.drain(runtime.of(app), budget=5)
        [attempt] = db.session.scalars(db.select(Attempt)).all()
        assert not attempt.success and attempt.error == "No answer within 0.6 s"
        # Cut off near the 0.6 s timeout, long before the 25 s the headers take: no byte came
        # later than 0.2 s after the one before, so only a deadline on the whole call ends it.
        assert attempt.duration_ms < 6000
    finally:
        server.close()
