"""Standard Webhooks signatures (docs/architecture.md, "Signature formats"), checked by the
specification's own Python library as the receiver: a real HTTP handler on 127.0.0.1 that
verifies every request with ``standardwebhooks`` and answers 401 when it does not verify.
Deliveries go through ingest, Redis, an RQ worker and real HTTP."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.servers import status_of
from webhookapp.core.times import utcnow
from webhookapp.engine import signing
from webhookapp.engine.types import snapshot
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.services import secret_rotation
from webhookapp.services import webhook_changes as service


@dataclass
class Delivered:
    headers: dict[str, str]
    body: bytes
    verified: bool


@dataclass
class Receiver:
    """A handler that verifies with any of ``secrets`` (the Standard Webhooks library's check:
    signature, and a timestamp within five minutes); ``fail_first`` answers 500 that many times
    to a good request, so the service retries."""

    secrets: list[str]
    url: str = ""
    fail_first: int = 0
    delivered: list[Delivered] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        for secret in self.secrets:
            try:
                StandardWebhook(secret).verify(body, headers, json_parse=False)  # a GET has no body
            except WebhookVerificationError:
                continue
            return True
        return False

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Delivered]:
        with self.condition:
            assert self.condition.wait_for(lambda: len(self.delivered) >= count, timeout), self.delivered
            return list(self.delivered)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(secrets=[])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers)
            verified = state.verify(headers, body)
            with state.condition:
                state.delivered.append(Delivered(headers, body, verified))
                failing = verified and state.fail_first > 0
                state.fail_first -= failing
                state.condition.notify_all()
            status = 401 if not verified else 500 if failing else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/standard"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def attempts_of(hook_id: str) -> list[Attempt]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def fresh(hook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, hook_id)


def deliver(app, client, hook: Webhook) -> None:
    post_event(client, api_token(hook.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)


def resend(url: str, headers: dict[str, str], body: bytes) -> int:
    """Send the receiver a request of our own making; its status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    return status_of(request)


def standard_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower().startswith("webhook-")}


def test_a_standard_secret_is_whsec_and_generated_in_that_form(app, vendor):
    hook = make_webhook(vendor, signature_format="standard")
    assert hook.jwt_secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(hook.jwt_secret.removeprefix("whsec_"), validate=True)) <= 64
    assert make_webhook(vendor).jwt_secret[:6] != "whsec_"  # the JWT keeps its own form
    short = "whsec_" + base64.b64encode(b"x" * 16).decode()
    for wrong, message in (("not-whsec", "starts with whsec_"), (short, "24 to 64 bytes"), ("whsec_***", "base64")):
        with pytest.raises(service.WebhookValidationError) as raised:
            make_webhook(vendor, signature_format="standard", jwt_secret=wrong)
        assert message in " ".join(raised.value.errors["jwt_secret"])
    with pytest.raises(service.WebhookValidationError) as raised:
        make_webhook(vendor, signature_format="hmac")
    assert raised.value.errors == {"signature_format": ["Signature format must be jwt or standard."]}


def test_a_delivery_verifies_with_the_library_and_tampering_fails(app, client, vendor, receiver):
    hook = make_webhook(vendor, signature_format="standard", external_url=receiver.url, data={"purpose": "demo"})
    receiver.secrets = [hook.jwt_secret]
    deliver(app, client, hook)
    [good] = receiver.wait_for(1)
    assert good.verified
    assert "Authorization" not in good.headers  # the Standard Webhooks headers instead of the JWT
    payload = json.loads(good.body)
    assert tuple(payload) == signing.PAYLOAD_KEYS and payload["data"] == {"purpose": "demo"}  # the same JSON
    sent = standard_headers(good.headers)
    assert sent["webhook-id"].startswith("msg_") and sent["webhook-signature"].startswith("v1,")
    assert abs(int(sent["webhook-timestamp"]) - utcnow().timestamp()) < 60

    [attempt] = attempts_of(hook.id)
    assert attempt.success and attempt.response_status == 200
    logged = {name.lower(): value for name, value in attempt.request_headers.items()}
    assert logged["webhook-signature"] == "v1,REDACTED"
    assert logged["webhook-id"] == sent["webhook-id"] and logged["webhook-timestamp"] == sent["webhook-timestamp"]
    signature = sent["webhook-signature"].split(",", 1)[1]
    assert signature not in json.dumps(attempt.request_headers)

    # What the service never sends, sent by hand to the same handler: each is refused.
    assert resend(receiver.url, sent, good.body) == 200
    assert resend(receiver.url, sent, good.body.replace(b'"demo"', b'"dem0"')) == 401  # tampered body
    old = signing.build_call(snapshot(fresh(hook.id)), triggered_at=utcnow() - timedelta(minutes=5, seconds=5),
                             api_url=None)  # fmt: skip
    assert old.body is not None and resend(receiver.url, standard_headers(old.headers), old.body) == 401

    other = make_webhook(vendor, signature_format="standard", external_url=receiver.url)  # another secret
    deliver(app, client, other)
    [wrong] = attempts_of(other.id)
    assert (wrong.success, wrong.response_status) == (False, 401)


def test_a_get_delivery_signs_the_empty_body(app, client, vendor, receiver):
    hook = make_webhook(vendor, signature_format="standard", external_url=receiver.url, http_method="GET")
    receiver.secrets = [hook.jwt_secret]
    deliver(app, client, hook)
    [request] = receiver.wait_for(1)
    assert request.verified and request.body == b""


def test_during_a_rotation_both_signatures_are_sent_and_either_secret_verifies(app, client, vendor, receiver):
    hook = make_webhook(vendor, signature_format="standard", external_url=receiver.url)
    current = hook.jwt_secret
    following = secret_rotation.generate_next(hook)
    assert following.startswith("whsec_") and following != current
    receiver.secrets = [current]
    deliver(app, client, hook)
    [request] = receiver.wait_for(1)
    assert request.verified
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(item.startswith("v1,") for item in signatures)
    for secret in (current, following):
        StandardWebhook(secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(signing.new_standard_secret()).verify(request.body, request.headers)
    logged = attempts_of(hook.id)[0].request_headers
    assert logged["webhook-signature"] == "v1,REDACTED v1,REDACTED"
    # A typed next secret must be in the format's form too.
    with pytest.raises(service.WebhookValidationError):
        secret_rotation.generate_next(fresh(hook.id), "a-jwt-style-secret-of-some-length")


def test_the_webhook_id_is_kept_by_retries_and_new_for_a_redelivery_or_the_next_trigger(app, client, vendor, receiver):
    app.config.update(WEBHOOK_RETRY_BASE=0.2, WEBHOOK_RETRY_FACTOR=1.5, WEBHOOK_RETRY_MAX_INTERVAL=2)
    hook = make_webhook(vendor, signature_format="standard", external_url=receiver.url)
    receiver.secrets, receiver.fail_first = [hook.jwt_secret], 2
    deliver(app, client, hook)  # 500, 500, then 200: one trigger, three attempts
    first_trigger = receiver.wait_for(3)
    assert all(item.verified for item in first_trigger)
    ids = {item.headers["webhook-id"] for item in first_trigger}
    assert len(ids) == 1, ids
    assert [(a.number, a.success) for a in attempts_of(hook.id)] == [(1, False), (2, False), (3, True)]
    assert fresh(hook.id).trigger_message_id is None  # the trigger is done

    deliver(app, client, hook)  # the next trigger is another message
    second = receiver.wait_for(4)[3]
    assert second.verified and second.headers["webhook-id"] not in ids

    original = attempts_of(hook.id)[0]
    response = client.post(
        f"/public/v1/notifications/webhooks/{hook.id}/attempts/{original.id}/redeliver",
        headers={"Authorization": f"ApiKey {api_token(vendor.account)}"},
    )
    assert response.status_code == 201, response.get_json()
    redelivered = receiver.wait_for(5)[4]
    assert redelivered.verified
    assert redelivered.headers["webhook-id"] not in ids | {second.headers["webhook-id"]}


def test_switching_to_standard_is_staged_through_the_next_secret(app, client, vendor, receiver):
    hook = make_webhook(vendor, external_url=receiver.url)
    jwt_secret = hook.jwt_secret
    service.update_webhook(hook, {"signature_format": "standard"})
    staged = fresh(hook.id)
    assert (staged.signature_format, staged.signature_switch_pending) == ("standard", True)
    assert staged.jwt_secret == jwt_secret and staged.jwt_secret_next.startswith("whsec_")

    # Until the switch both are sent: the JWT with the current secret, webhook-signature with the next.
    receiver.secrets = [staged.jwt_secret_next, jwt_secret]  # the JWT secret is never a whsec_ key
    deliver(app, client, hook)
    [both] = receiver.wait_for(1)
    assert both.verified and len(both.headers["webhook-signature"].split(" ")) == 1
    claims = jwt.decode(both.headers["Authorization"].removeprefix("Bearer "), jwt_secret, algorithms=["HS256"])
    assert claims["webhook_id"] == hook.id
    logged = attempts_of(hook.id)[0].request_headers
    assert logged["Authorization"].endswith(".REDACTED") and logged["webhook-signature"] == "v1,REDACTED"

    secret_rotation.switch_to_next(fresh(hook.id))
    switched = fresh(hook.id)
    assert (switched.signature_switch_pending, switched.jwt_secret_next) == (False, None)
    assert switched.jwt_secret.startswith("whsec_")
    receiver.secrets = [switched.jwt_secret]
    deliver(app, client, hook)
    after = receiver.wait_for(2)[1]
    assert after.verified and "Authorization" not in after.headers


def test_a_staged_change_of_format_is_cancelled_by_discard_or_by_changing_back(app, vendor):
    hook = make_webhook(vendor)
    jwt_secret = hook.jwt_secret
    service.update_webhook(hook, {"signature_format": "standard"})
    secret_rotation.discard_next(fresh(hook.id))
    cancelled = fresh(hook.id)
    assert (cancelled.signature_format, cancelled.signature_switch_pending) == ("jwt", False)
    assert (cancelled.jwt_secret, cancelled.jwt_secret_next) == (jwt_secret, None)

    service.update_webhook(cancelled, {"signature_format": "standard"})
    service.update_webhook(fresh(hook.id), {"signature_format": "jwt"})
    back = fresh(hook.id)
    assert (back.signature_format, back.signature_switch_pending, back.jwt_secret_next) == ("jwt", False, None)

    # A whsec_ secret given with the change applies at once; a JWT-style one is refused.
    with pytest.raises(service.WebhookValidationError):
        service.update_webhook(fresh(hook.id), {"signature_format": "standard", "jwt_secret": "plain-jwt-secret"})
    given = signing.new_standard_secret()
    service.update_webhook(fresh(hook.id), {"signature_format": "standard", "jwt_secret": given})
    at_once = fresh(hook.id)
    assert (at_once.signature_format, at_once.signature_switch_pending, at_once.jwt_secret) == (
        "standard", False, given)  # fmt: skip
