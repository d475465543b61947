"""Connect's own Python client (``connect-openapi-client``) drives the management API
(docs/architecture.md, "Management API").

The app is served on a real port by a thread; the client is used as published, without specs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest
import trustme
from connect.client import ClientError, ConnectClient, R
from flask import Flask
from standardwebhooks.webhooks import Webhook as StandardWebhook
from werkzeug.serving import make_server

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

SECRET_MIN = 32


@dataclass
class Live:
    url: str
    queries: list[str] = field(default_factory=list)  # the query strings of list requests
    errors: list[BaseException] = field(default_factory=list)


@pytest.fixture
def live(app: Flask) -> Iterator[Live]:
    """The test's app on http://127.0.0.1:<free port>, recording list queries and raised exceptions."""
    state = Live("")

    def wsgi(environ, start_response):
        if environ["PATH_INFO"].endswith("/webhooks") and environ["REQUEST_METHOD"] == "GET":
            state.queries.append(environ.get("QUERY_STRING", ""))
        try:
            return app(environ, start_response)
        except BaseException as exc:
            state.errors.append(exc)
            raise

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    assert state.errors == []


def connect(live: Live, token: str, **options) -> ConnectClient:
    return ConnectClient(f"ApiKey {token}", endpoint=f"{live.url}/public/v1", use_specs=False,
                         validate_using_specs=False, max_retries=0, **options)  # fmt: skip


@pytest.fixture
def client(live, vendor) -> ConnectClient:
    return connect(live, api_token(vendor.account))


def webhooks(client: ConnectClient):
    return client.ns("notifications").collection("webhooks")


def new_hook(vendor, url: str, label: str, **extra) -> dict:
    return {"product_id": vendor.products[0].id, "object_class": "fulfillment_request", "type": "event",
            "label": label, "external_url": url, "http_method": "POST", **extra}  # fmt: skip


def test_create_get_update_trigger_attempts_delete(app, client, vendor, handler):
    collection = webhooks(client)
    created = collection.create(new_hook(vendor, handler.behave("/orders"), "Orders", active=True))
    hook_id = created["id"]
    assert created["product"]["id"] == vendor.products[0].id and created["status"] == "enabled"
    assert len(created["jwt_secret"]) >= SECRET_MIN  # omitted, so generated

    assert collection.resource(hook_id).get() == created
    assert client("notifications").webhooks[hook_id].get()["label"] == "Orders"

    updated = collection.resource(hook_id).update({"label": "Orders v2", "headers": {"X-Team": "ops"}})
    assert (updated["label"], updated["headers"], updated["jwt_secret"]) == (
        "Orders v2", {"X-Team": "ops"}, created["jwt_secret"])  # fmt: skip

    triggered = collection.resource(hook_id).action("trigger").post()
    assert triggered["stats"]["events"] == 1
    run_worker(app)
    received = handler.wait_for("/orders")[0]
    assert received.headers["X-Team"] == "ops" and received.json()["webhook_name"] == "Orders v2"
    attempts = list(collection.resource(hook_id).collection("attempts").all())
    assert [(a["kind"], a["success"], a["response"]["status"]) for a in attempts] == [("trigger", True, 200)]
    assert collection.resource(hook_id).collection("attempts").all().count() == 1

    assert collection.resource(hook_id).delete() is None
    with pytest.raises(ClientError) as caught:
        collection.resource(hook_id).get()
    assert (caught.value.status_code, caught.value.error_code) == (404, "WH_404")


def test_a_standard_webhook_through_the_client(app, client, vendor, handler):
    collection = webhooks(client)
    created = collection.create(new_hook(vendor, handler.behave("/std"), "Std", active=True,
                                         signature_format="standard"))  # fmt: skip
    hook_id = created["id"]
    assert (created["signature_format"], created["signature_switch_pending"]) == ("standard", False)
    assert created["jwt_secret"].startswith("whsec_")  # generated in the Standard Webhooks form
    collection.resource(hook_id).action("trigger").post()
    run_worker(app)
    received = handler.wait_for("/std")[0]
    StandardWebhook(created["jwt_secret"]).verify(received.body, received.headers)

    # Back to the JWT: staged through the next secret; a client that PUTs what it got changes nothing else.
    staged = collection.resource(hook_id).update({**collection.resource(hook_id).get(), "signature_format": "jwt"})
    assert (staged["signature_format"], staged["signature_switch_pending"]) == ("jwt", True)
    assert staged["jwt_secret"] == created["jwt_secret"] and not staged["jwt_secret_next"].startswith("whsec_")
    switched = collection.resource(hook_id).collection("next-secret").action("switch").post()
    assert (switched["signature_format"], switched["signature_switch_pending"]) == ("jwt", False)
    assert switched["jwt_secret"] == staged["jwt_secret_next"]

    with pytest.raises(ClientError) as caught:
        collection.create(new_hook(vendor, handler.url + "/h", "Bad", signature_format="standard",
                                   jwt_secret="a-jwt-secret-is-not-a-whsec-one"))  # fmt: skip
    assert caught.value.status_code == 400 and "whsec_" in " ".join(caught.value.errors)


def test_filters_and_ordering(client, vendor, other_vendor, handler):
    collection = webhooks(client)
    for label, active in (("alpha", True), ("bravo", False), ("charlie", True)):
        collection.create(new_hook(vendor, handler.url + "/h", label, active=active))
    dynamic = collection.create(new_hook(vendor, handler.url + "/h", "delta", product_id=vendor.products[1].id))
    make_webhook(other_vendor, label="alpha")

    assert [hook["label"] for hook in collection.filter(label="alpha")] == ["alpha"]
    assert collection.filter(label="alpha").count() == 1
    assert {hook["label"] for hook in collection.filter(R().active.eq(True))} == {"alpha", "charlie"}
    assert [h["id"] for h in collection.filter(R().product.id.eq(vendor.products[1].id))] == [dynamic["id"]]
    assert [h["id"] for h in collection.filter(product__id=vendor.products[1].id)] == [dynamic["id"]]
    assert {h["label"] for h in collection.filter(R().label.oneof(["alpha", "delta"]))} == {"alpha", "delta"}
    assert {h["label"] for h in collection.filter(~R().label.eq("alpha") & R().active.eq(False))} == {
        "bravo", "delta"}  # fmt: skip
    assert {h["label"] for h in collection.filter(R().label.eq("alpha") | R().label.ilike("*HARL*"))} == {
        "alpha", "charlie"}  # fmt: skip
    assert [h["label"] for h in collection.all().order_by("-label")] == ["delta", "charlie", "bravo", "alpha"]
    assert collection.all().order_by("active", "label").first()["label"] == "bravo"
    assert collection.all().select("-stats").count() == 4


def test_the_client_pages_with_limit_offset_and_content_range(live, client, vendor, handler):
    collection = webhooks(client)
    made = {collection.create(new_hook(vendor, handler.url + "/h", f"hook {n:02}"))["id"] for n in range(25)}
    live.queries.clear()
    resources = collection.all().limit(10)
    seen = [hook["id"] for hook in resources]
    assert len(seen) == 25 and set(seen) == made
    assert tuple(resources.content_range) == (20, 24, 25)
    pages = [{name: values[0] for name, values in parse_qs(query).items()} for query in live.queries]
    assert [(page["limit"], page["offset"]) for page in pages] == [("10", "0"), ("10", "10"), ("10", "20")]
    assert collection.all().count() == 25
    assert collection.filter(R().label.like("hook 1*")).count() == 10
    assert [hook["label"] for hook in collection.all().order_by("label")[12:15]] == ["hook 12", "hook 13", "hook 14"]


def test_errors_surface_as_client_errors(client, vendor, other_vendor, distributor, live):
    collection = webhooks(client)
    with pytest.raises(ClientError) as missing:
        collection.resource("WH-000-000-000").get()
    assert (missing.value.status_code, missing.value.error_code) == (404, "WH_404")
    assert missing.value.errors == ["Webhook WH-000-000-000 not found."]

    foreign = make_webhook(other_vendor, label="Theirs").id
    for call in (lambda: collection.resource(foreign).get(), lambda: collection.resource(foreign).delete(),
                 lambda: collection.resource(foreign).update({"label": "Mine"}),
                 lambda: collection.resource(foreign).action("trigger").post()):  # fmt: skip
        with pytest.raises(ClientError) as caught:
            call()
        assert (caught.value.status_code, caught.value.error_code) == (404, "WH_404")
    db.session.expire_all()
    assert db.session.get(Webhook, foreign).label == "Theirs"

    with pytest.raises(ClientError) as invalid:
        webhooks(connect(live, api_token(distributor.account))).create(
            new_hook(vendor, "https://handler.example.com/", "Draft", type="validator"))  # fmt: skip
    assert (invalid.value.status_code, invalid.value.error_code) == (400, "VAL_001")
    assert any("vendors only" in message for message in invalid.value.errors)

    with pytest.raises(ClientError) as unauthorized:
        list(webhooks(connect(live, "whk_wrong")).all())
    assert (unauthorized.value.status_code, unauthorized.value.error_code) == (401, "AUTH_001")


def test_search_narrows_the_list(client, vendor, handler):
    collection = webhooks(client)
    for label in ("alpha", "bravo"):
        collection.create(new_hook(vendor, handler.url + "/h", label))
    assert [hook["label"] for hook in collection.all().search("alpha")] == ["alpha"]


def test_past_the_count_bound_the_client_still_sees_every_item(monkeypatch, live, client, vendor, handler):
    """Beyond ``COUNT_BOUND`` the total is an estimate (exact on SQLite), never below what a page
    proves: the client pages on and stops at the first short page."""
    monkeypatch.setattr(paging, "COUNT_BOUND", 5)
    collection = webhooks(client)
    made = {collection.create(new_hook(vendor, handler.url + "/h", f"hook {n:02}"))["id"] for n in range(23)}
    live.queries.clear()
    resources = collection.all().limit(10)
    assert {hook["id"] for hook in resources} == made
    assert tuple(resources.content_range) == (20, 22, 23)  # a short last page: exact
    assert len(live.queries) == 3
    total = collection.all().count()
    assert total == 23 if db.engine.dialect.name == "sqlite" else total > 5


def test_the_events_resource(app, client, vendor, other_vendor, handler):
    """Events are read like webhooks: RQL on webhook.id, external_id, created_at; pages; a 404."""
    collection = webhooks(client)
    orders = collection.create(new_hook(vendor, handler.url + "/h", "Orders", active=True))
    audit = collection.create(new_hook(vendor, handler.url + "/h", "Audit", active=True))
    poster, token, theirs = app.test_client(), api_token(vendor.account), make_webhook(other_vendor, label="Theirs")
    for n in range(12):
        post_event(poster, token, object_class="fulfillment_request", product_id=vendor.products[0].id,
                   id=f"order-{n}", object_id=f"PR-{n}")  # fmt: skip
    _, foreign = post_event(poster, api_token(other_vendor.account), object_class="fulfillment_request",
                            product_id=theirs.product_id, id="order-0")  # fmt: skip
    events = client.collection("events")

    seen = list(events.filter(R().webhook.id.eq(orders["id"])).order_by("-created_at").limit(5))
    assert sorted(event["external_id"] for event in seen) == sorted(f"order-{n}" for n in range(12))
    assert [event["created_at"] for event in seen] == sorted((event["created_at"] for event in seen), reverse=True)
    assert all(sorted(event["webhooks"]) == sorted([orders["id"], audit["id"]]) for event in seen)
    assert events.filter(R().webhook.id.eq(theirs.id)).count() == 0  # another account's webhook: nothing
    [one] = events.filter(external_id="order-3")
    assert one["object_id"] == "PR-3" and one["product"]["id"] == vendor.products[0].id
    assert events.filter(R().created_at.gt("2000-01-01T00:00:00")).count() == 12
    assert events.filter(R().created_at.lt("2000-01-01T00:00:00")).count() == 0
    assert events.resource(one["id"]).get() == one
    with pytest.raises(ClientError) as missing:
        events.resource(foreign["id"]).get()
    assert (missing.value.status_code, missing.value.error_code) == (404, "EV_404")


def test_the_audit_trail_through_the_client(client, vendor, handler):
    created = webhooks(client).create(new_hook(vendor, handler.url + "/h", "Audited"))
    webhooks(client).resource(created["id"]).update({"label": "Audited v2"})
    trail = client.collection("audit")
    updated = list(trail.filter(R().object.id.eq(created["id"]) & R().action.eq("webhook.updated")))
    assert [entry["changes"] for entry in updated] == [{"label": {"before": "Audited", "after": "Audited v2"}}]
    assert updated[0]["actor"]["kind"] == "token"
    assert trail.resource(updated[0]["id"]).get() == updated[0]
    assert trail.filter(action="webhook.created").count() == 1
    with pytest.raises(ClientError) as caught:
        trail.resource(updated[0]["id"]).delete()
    assert caught.value.status_code == 405


def test_a_client_certificate_through_the_client(client, vendor):
    """Mutual TLS fields (docs/handlers.md, "Client certificates"): the key goes in, never out."""
    leaf = trustme.CA().issue_cert("orders.clients.example")
    cert, key = leaf.cert_chain_pems[0].bytes().decode(), leaf.private_key_pem.bytes().decode()
    collection = webhooks(client)
    created = collection.create(new_hook(vendor, "https://handler.example.com/hook", "Mutual",
                                         tls_client_cert=cert, tls_client_key=key))  # fmt: skip
    assert created["tls_client_cert"] == cert.strip() and created["tls_client_key_set"] is True
    assert "tls_client_key" not in created
    # Sent back as read (the client's usual update), the key is kept.
    updated = collection.resource(created["id"]).update({**created, "label": "Mutual v2"})
    assert updated["tls_client_key_set"] is True and updated["label"] == "Mutual v2"
    other_key = trustme.CA().issue_cert("other.example").private_key_pem.bytes().decode()
    with pytest.raises(ClientError) as caught:
        collection.resource(created["id"]).update({"tls_client_key": other_key})
    assert caught.value.status_code == 400 and "tls_client_key: This key does not match" in str(caught.value.errors)


def test_recover_through_the_client(app, client, vendor, handler):
    collection = webhooks(client)
    hook_id = collection.create(new_hook(vendor, handler.behave("/down", status=503), "Recovered", active=True))["id"]
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1  # one failed attempt ends the trigger
    collection.resource(hook_id).action("trigger").post()
    run_worker(app)
    handler.wait_for("/down")
    handler.behave("/down")  # the handler is fixed

    since = "2020-01-01T00:00:00+00:00"
    started = collection.resource(hook_id).action("recover").post({"since": since})
    assert (started["state"], started["total"], started["webhook"]) == ("running", 1, {"id": hook_id})
    with pytest.raises(ClientError) as caught:
        collection.resource(hook_id).action("recover").post({"since": since})
    assert (caught.value.status_code, caught.value.error_code) == (409, "REC_409")
    app.config["WEBHOOK_RECOVER_RATE"] = 1000
    run_worker(app)
    handler.wait_for("/down", 2)
    recovery = collection.resource(hook_id).collection("recoveries").resource(started["id"]).get()
    assert (recovery["state"], recovery["sent"], recovery["succeeded"]) == ("finished", 1, 1)
    with pytest.raises(ClientError) as caught:
        collection.resource(hook_id).collection("recoveries").resource(started["id"]).action("cancel").post()
    assert (caught.value.status_code, caught.value.error_code) == (409, "REC_409")
