"""Staged secret rotation (docs/architecture.md, "Secret rotation"): handlers that check the JWT
keep working through a change of secret, on the pages and in the API."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.webhooks.secret_rotation_views import SWITCH_NOT_CONFIRMED

OLD = "the-old-secret-0123456789abcdef0123456789"
NEW = "the-new-secret-0123456789abcdef0123456789"
ACCEPTED = {"/old": [OLD], "/new": [NEW], "/both": [OLD, NEW]}


class CheckingHandler:
    """Handlers on 127.0.0.1 that verify the JWT as real ones do: ``/old`` accepts the old secret
    only, ``/new`` the new one only, ``/both`` either (the handler of a staged rotation)."""

    def __init__(self) -> None:
        accepted = ACCEPTED

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                ok = False
                for secret in accepted.get(self.path, []):
                    try:
                        jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
                        ok = True
                    except jwt.InvalidTokenError:
                        continue
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def checking() -> Iterator[CheckingHandler]:
    server = CheckingHandler()
    yield server
    server.close()


def outcomes(webhook_id: str) -> list[bool]:
    db.session.expire_all()
    query = db.select(Attempt.success).where(Attempt.webhook_id == webhook_id).order_by(Attempt.id)
    return list(db.session.scalars(query))


def stored(webhook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, webhook_id)


def test_handlers_keep_working_through_a_staged_rotation(app, client, vendor, checking, auth):
    hooks = {
        path: make_webhook(vendor, label=path, external_url=checking.url + path, jwt_secret=OLD)
        for path in ("/old", "/new", "/both")
    }
    token = api_token(vendor.account)

    def deliver() -> None:
        """One event, delivered to every hook; a refused one is not left waiting for its retry."""
        status, _body = post_event(client, token, object_class="fulfillment_request", product_id=vendor.products[0].id)
        assert status == 202
        run_worker(app)
        for hook in hooks.values():
            row = stored(hook.id)
            row.next_trigger_at, row.trigger_attempts = None, 0
        db.session.commit()

    deliver()
    auth.login()
    for hook in hooks.values():  # the next secret is set, deliveries still use the old one
        response = client.post("/public/v1/notifications/webhooks/" + hook.id + "/next-secret",
                               json={"jwt_secret_next": NEW}, headers={"Authorization": f"ApiKey {token}"})  # fmt: skip
        assert response.status_code == 200 and response.get_json()["jwt_secret_next"] == NEW
    deliver()
    assert {path: outcomes(hook.id) for path, hook in hooks.items()} == {
        "/old": [True, True], "/new": [False, False], "/both": [True, True],
    }  # fmt: skip

    for hook in hooks.values():
        assert client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"}).status_code == 302
        assert (stored(hook.id).jwt_secret, stored(hook.id).jwt_secret_next) == (NEW, None)
    deliver()
    assert {path: outcomes(hook.id)[-1] for path, hook in hooks.items()} == {"/old": False, "/new": True, "/both": True}


def test_the_jwt_header_stays_exactly_typ_and_alg(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/h"), jwt_secret=OLD)
    hook.jwt_secret_next = NEW
    db.session.commit()
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    [request] = handler.wait_for("/h")
    token = request.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "HS256"}
    jwt.decode(token, OLD, algorithms=["HS256"])  # signed with the current secret, not the next one


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def test_the_http_settings_tab_generates_switches_and_discards(client, auth, vendor):
    hook = make_webhook(vendor, jwt_secret=OLD)
    auth.login()
    body = page(client, f"/webhooks/{hook.id}?tab=http")
    assert "Generate next secret" in body and "Switch to next secret" not in body

    assert client.post(f"/webhooks/{hook.id}/secret/next").headers["Location"] == f"/webhooks/{hook.id}?tab=http"
    following = stored(hook.id).jwt_secret_next
    assert following and following != OLD and len(following) >= 40
    body = page(client, f"/webhooks/{hook.id}?tab=http")
    assert "A next secret was generated." in body
    assert following not in body and OLD not in body  # both masked until revealed
    assert "Switch to next secret" in body and "Discard next secret" in body
    assert following in page(client, f"/webhooks/{hook.id}?tab=http&reveal=next")
    assert client.get(f"/webhooks/{hook.id}/secret?which=next").get_json() == {"jwt_secret": following}

    client.post(f"/webhooks/{hook.id}/secret/discard")
    assert stored(hook.id).jwt_secret_next is None and stored(hook.id).jwt_secret == OLD
    assert client.get(f"/webhooks/{hook.id}/secret?which=next").status_code == 404

    client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"})  # nothing to switch to
    assert "There is no next secret to switch to: generate one first." in page(client, f"/webhooks/{hook.id}?tab=http")
    assert stored(hook.id).jwt_secret == OLD

    client.post(f"/webhooks/{hook.id}/secret/next")
    following = stored(hook.id).jwt_secret_next
    body = " ".join(page(client, f"/webhooks/{hook.id}?tab=http").split())
    [box] = re.findall(r'<input type="checkbox" name="confirm"[^>]*>', body)
    assert "required" in box and "The handler accepts the next secret" in body
    assert "a handler that verifies only with it rejects every delivery until it is updated" in body
    for unconfirmed in ({}, {"confirm": ""}, {"confirm": "no"}):  # the server refuses, whatever the page did
        assert client.post(f"/webhooks/{hook.id}/secret/switch", data=unconfirmed).status_code == 302
        assert (stored(hook.id).jwt_secret, stored(hook.id).jwt_secret_next) == (OLD, following)
    assert SWITCH_NOT_CONFIRMED in page(client, f"/webhooks/{hook.id}?tab=http")
    client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"})
    assert (stored(hook.id).jwt_secret, stored(hook.id).jwt_secret_next) == (following, None)


def test_another_accounts_webhook_is_not_found(client, auth, vendor, other_vendor):
    theirs = make_webhook(other_vendor, jwt_secret=OLD)
    auth.login()
    for action in ("next", "switch", "discard"):
        assert client.post(f"/webhooks/{theirs.id}/secret/{action}").status_code == 404
    assert client.get(f"/webhooks/{theirs.id}/secret?which=next").status_code == 404
    assert stored(theirs.id).jwt_secret_next is None


def test_the_api_refuses_bad_next_secrets_and_changes_nothing(client, vendor, other_vendor):
    hook = make_webhook(vendor, jwt_secret=OLD)
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    base = f"/public/v1/notifications/webhooks/{hook.id}/next-secret"
    for body in ({"jwt_secret_next": "x" * 101}, {"jwt_secret_next": 5}, {"other": "x"}, ["x"],
                 {"jwt_secret_next": "bad\u0000secret"}):  # fmt: skip
        response = client.post(base, json=body, headers=headers)
        assert response.status_code == 400, body
        assert response.get_json()["error_code"] == "VAL_001"
    assert stored(hook.id).jwt_secret_next is None
    assert client.post(base + "/switch", headers=headers).status_code == 400
    theirs = make_webhook(other_vendor)
    assert client.post(f"/public/v1/notifications/webhooks/{theirs.id}/next-secret", headers=headers).status_code == 404
    generated = client.post(base, headers=headers).get_json()["jwt_secret_next"]
    assert len(generated) >= 40
    assert client.delete(base, headers=headers).get_json()["jwt_secret_next"] is None
