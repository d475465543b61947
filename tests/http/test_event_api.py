"""``POST /public/v1/events`` (docs/architecture.md, "Event ingest"): authentication, validation,
matching, idempotency, recovery."""

from __future__ import annotations

import io
import json

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from tests.conftest import make_webhook
from tests.engine import api_token, run_worker
from webhookapp.engine import delivery, dispatch, ingest, runtime
from webhookapp.infra.extensions import db
from webhookapp.models import Event, Webhook
from webhookapp.services import tokens

URL = "/public/v1/events"
FULFILLMENT = "fulfillment_request"


def post(client: FlaskClient, token: str | None, body=None, *, scheme: str = "ApiKey", extra_headers=None, **kwargs):
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    headers.update(extra_headers or {})
    if body is not None:
        kwargs["json"] = body
    return client.post(URL, headers=headers, **kwargs)


def event_for(product_id: str, **extra) -> dict:
    return {"object_class": FULFILLMENT, "product_id": product_id, **extra}


def event_rows() -> int:
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count()).select_from(Event))


def counted(*hooks: Webhook) -> list[int]:
    db.session.expire_all()
    return [db.session.get(Webhook, hook.id).events_count for hook in hooks]


def assert_error(response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error_code", "errors"}
    assert isinstance(body["error_code"], str) and body["error_code"]
    assert body["errors"] and all(isinstance(message, str) and message for message in body["errors"])
    for fragment in fragments:
        assert any(fragment in message for message in body["errors"]), (fragment, body["errors"])


def test_an_event_matches_only_active_event_webhooks_of_its_class_and_product(client, vendor, distributor, token):
    product, other_product = vendor.products
    matching = [make_webhook(vendor, label=f"match {n}") for n in range(3)]
    out_of_order = make_webhook(vendor, label="out of order")  # still counts events
    db.session.get(Webhook, out_of_order.id).out_of_order = True
    db.session.commit()
    others = [
        make_webhook(vendor, active=False),
        make_webhook(vendor, type_key="listing_request.event"),
        make_webhook(vendor, type_key="fulfillment_request.validator"),
        make_webhook(vendor, product_id=other_product.id),
        make_webhook(distributor, product_id=product.id),
    ]

    response = post(client, token, event_for(product.id))

    assert response.status_code == 202
    body = response.get_json()
    expected = sorted(h.id for h in [*matching, out_of_order])
    assert set(body) == {"id", "webhooks", "duplicate"}
    assert body["id"].startswith("EV-") and body["duplicate"] is False
    assert body["webhooks"] == expected
    assert counted(*matching, out_of_order) == [1, 1, 1, 1]
    assert counted(*others) == [0] * len(others)
    stored = db.session.get(Event, body["id"])
    assert (stored.account_id, stored.object_class, stored.product_id) == (vendor.account.id, FULFILLMENT, product.id)
    assert stored.webhook_ids == expected


def test_a_platform_token_reaches_every_accounts_webhooks(client, vendor, other_vendor, distributor):
    own = make_webhook(vendor)
    dist = make_webhook(distributor, product_id=vendor.products[0].id)
    unrelated = make_webhook(other_vendor)
    platform = api_token(other_vendor.account, platform=True)
    response = post(client, platform, event_for(vendor.products[0].id))
    assert response.status_code == 202
    assert response.get_json()["webhooks"] == sorted([own.id, dist.id])
    assert counted(own, dist, unrelated) == [1, 1, 0]


@pytest.mark.parametrize("scheme", ["ApiKey", "Bearer", "apikey", "bearer"])
def test_apikey_and_bearer_are_both_accepted(client, hook, token, scheme):
    response = post(client, token, event_for(hook.product_id), scheme=scheme)
    assert response.status_code == 202
    assert response.get_json()["webhooks"] == [hook.id]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "ApiKey", "ApiKey ", "Basic dXNlcjpwYXNz", "Token {token}", "{token}", "ApiKey whk_unknown", "Bearer x"],
)
def test_missing_malformed_and_unknown_tokens_are_401(client, hook, token, authorization):
    headers = {} if authorization is None else {"Authorization": authorization.format(token=token)}
    response = client.post(URL, json=event_for(hook.product_id), headers=headers)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert event_rows() == 0 and counted(hook) == [0]


def test_a_revoked_token_is_401(client, vendor, hook):
    row, plain = tokens.create_token(vendor.account, "old")
    tokens.revoke_token(row)
    assert_error(post(client, plain, event_for(hook.product_id)), 401)
    assert event_rows() == 0 and counted(hook) == [0]


BAD_BODIES = {
    "not an object": ([{"object_class": FULFILLMENT}], "object"),
    "a string": ("fulfillment_request", "object"),
    "missing object_class": ({"product_id": "{product}"}, "object_class"),
    "unknown object_class": ({"object_class": "subscription", "product_id": "{product}"}, "object_class"),
    "object_class not a string": ({"object_class": ["fulfillment_request"], "product_id": "{product}"}, "object_class"),
    "missing product_id": ({"object_class": FULFILLMENT}, "product_id"),
    "product_id a number": ({"object_class": FULFILLMENT, "product_id": 5}, "product_id"),
    "empty product_id": ({"object_class": FULFILLMENT, "product_id": ""}, "product_id"),
    "id a number": ({"object_class": FULFILLMENT, "product_id": "{product}", "id": 7}, "'id'"),
    "id too long": ({"object_class": FULFILLMENT, "product_id": "{product}", "id": "x" * 101}, "'id'"),
    "object_id a list": ({"object_class": FULFILLMENT, "product_id": "{product}", "object_id": []}, "object_id"),
    "api_url not http": ({"object_class": FULFILLMENT, "product_id": "{product}", "api_url": "ftp://x.t/"}, "api_url"),
    "api_url a number": ({"object_class": FULFILLMENT, "product_id": "{product}", "api_url": 1}, "api_url"),
    "unknown field": ({"object_class": FULFILLMENT, "product_id": "{product}", "colour": "red"}, "colour"),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_schema_errors_are_400_naming_the_field_and_change_nothing(client, hook, token, case):
    body, field = BAD_BODIES[case]
    text = json.dumps(body).replace("{product}", hook.product_id)
    response = post(client, token, data=text, content_type="application/json")
    assert_error(response, 400, field)
    assert event_rows() == 0 and counted(hook) == [0]


def test_an_id_of_exactly_100_characters_is_accepted(client, hook, token):
    response = post(client, token, event_for(hook.product_id, id="x" * 100))
    assert response.status_code == 202


@pytest.mark.parametrize("raw", [b"{oops", b"", b'{"object_class": "fulfillment_request",}', b"\xff\xfe{}"])
def test_malformed_json_is_400(client, hook, token, raw):
    response = post(client, token, data=raw, content_type="application/json")
    assert_error(response, 400, "JSON")
    assert event_rows() == 0 and counted(hook) == [0]


def test_deeply_nested_json_is_a_400_not_a_crash(client, hook, token):
    raw = b"[" * 30000 + b"]" * 30000  # valid JSON, under 64 KiB
    assert_error(post(client, token, data=raw, content_type="application/json"), 400)
    assert event_rows() == 0


def test_an_unknown_product_is_404(client, hook, token):
    response = post(client, token, event_for("PRD-000-000-000"))
    assert_error(response, 404, "PRD-000-000-000")
    assert event_rows() == 0 and counted(hook) == [0]


def test_another_vendors_product_is_404_for_a_vendor_token(client, hook, other_vendor):
    response = post(client, api_token(other_vendor.account), event_for(hook.product_id))
    assert_error(response, 404, hook.product_id)
    assert event_rows() == 0 and counted(hook) == [0]


def test_a_body_over_64_kib_is_413(client, hook, token):
    body = event_for(hook.product_id, object_id="x" * 100)
    raw = json.dumps(body).encode() + b" " * (64 * 1024)
    assert_error(post(client, token, data=raw, content_type="application/json"), 413)
    assert event_rows() == 0 and counted(hook) == [0]


@pytest.mark.parametrize(("padding", "status"), [(0, 202), (64 * 1024, 413)])
def test_a_chunked_body_without_content_length_is_capped_too(client, hook, token, padding, status):
    raw = json.dumps(event_for(hook.product_id)).encode() + b" " * padding
    response = post(
        client,
        token,
        input_stream=io.BytesIO(raw),
        content_type="application/json",
        extra_headers={"Transfer-Encoding": "chunked"},  # werkzeug then ignores CONTENT_LENGTH
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == status
    assert event_rows() == (1 if status == 202 else 0) and counted(hook) == [1 if status == 202 else 0]


def test_a_body_of_exactly_64_kib_is_read(client, hook, token):
    raw = json.dumps(event_for(hook.product_id)).encode()
    raw += b" " * (64 * 1024 - len(raw))
    assert post(client, token, data=raw, content_type="application/json").status_code == 202


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": '{"object_class": "fulfillment_request"}', "content_type": "text/plain"},
        {"data": {"object_class": FULFILLMENT, "product_id": "PRD"}},  # form-encoded
        {"data": '{"object_class": "fulfillment_request"}'},  # no content type at all
    ],
    ids=["text/plain", "form", "none"],
)
def test_a_body_that_is_not_json_is_415(client, hook, token, kwargs):
    assert_error(post(client, token, **kwargs), 415)
    assert event_rows() == 0 and counted(hook) == [0]


def test_a_repeated_client_id_is_answered_200_with_the_first_result(client, vendor, other_vendor, hook, token):
    body = event_for(hook.product_id, id="erp-42")
    first = post(client, token, body)
    second = post(client, token, body)
    assert first.status_code == 202 and second.status_code == 200
    assert second.get_json() == {**first.get_json(), "duplicate": True}
    assert first.get_json()["webhooks"] == [hook.id]
    assert event_rows() == 1 and counted(hook) == [1]

    elsewhere = make_webhook(other_vendor)
    other = post(client, api_token(other_vendor.account), {**body, "product_id": elsewhere.product_id})
    assert other.status_code == 202
    assert other.get_json()["duplicate"] is False and other.get_json()["id"] != first.get_json()["id"]
    assert other.get_json()["webhooks"] == [elsewhere.id]
    assert event_rows() == 2 and counted(hook, elsewhere) == [1, 1]


def test_another_accounts_token_never_matches_this_accounts_webhooks(client, vendor, other_vendor, hook):
    theirs = make_webhook(other_vendor)
    response = post(client, api_token(other_vendor.account), event_for(theirs.product_id))
    assert response.status_code == 202 and response.get_json()["webhooks"] == [theirs.id]
    assert counted(hook, theirs) == [0, 1]


def test_a_distributor_token_matches_only_the_distributors_webhooks(client, vendor, distributor, hook):
    dist_hook = make_webhook(distributor, product_id=vendor.products[0].id)
    response = post(client, api_token(distributor.account), event_for(hook.product_id))
    assert response.status_code == 202 and response.get_json()["webhooks"] == [dist_hook.id]
    assert counted(hook, dist_hook) == [0, 1]


def test_csrf_does_not_apply_to_the_event_api(csrf_client, hook, token):
    response = post(csrf_client, token, event_for(hook.product_id))
    assert response.status_code == 202 and response.get_json()["webhooks"] == [hook.id]
    assert counted(hook) == [1]


@pytest.mark.parametrize("path", ["/public/v1/nothing", "/public/v1/events/EV-1/extra", "/public/v2/events"])
def test_unknown_api_paths_are_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.is_json
    assert response.get_json()["error_code"] == "HTTP_404"
    assert "Location" not in response.headers


def test_delete_on_the_event_endpoint_is_a_json_405(client, token):
    response = client.delete(URL, headers={"Authorization": f"ApiKey {token}"})
    assert response.status_code == 405 and response.get_json()["error_code"] == "HTTP_405"


def test_an_event_committed_without_a_wake_up_is_delivered_by_the_sweeper(app, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/swept"))
    _row, plain = tokens.create_token(vendor.account, "erp")
    result = ingest.ingest_as(f"ApiKey {plain}", event_for(hook.product_id), runtime.of(app).group_commit, wake=False)
    assert result.webhook_ids == [hook.id]
    connection = Redis.from_url(app.config["REDIS_URL"])
    assert Queue(dispatch.QUEUE_NAME, connection=connection).count == 0  # the web process "died" here
    run_worker(app)
    assert handler.requests_to("/swept") == []

    assert delivery.sweep() is True
    run_worker(app)
    [request] = handler.wait_for("/swept")
    assert request.json()["webhook_id"] == hook.id
    db.session.expire_all()
    stored = db.session.get(Webhook, hook.id)
    assert (stored.events_count, stored.triggers_count, stored.success_count) == (1, 1, 1)
    assert stored.next_trigger_at is None
    assert delivery.sweep() is False


def test_only_an_event_that_makes_a_trigger_due_wakes_the_workers(app, client, vendor, token):
    first = make_webhook(vendor)
    second = make_webhook(vendor, product_id=vendor.products[1].id)
    broken = make_webhook(vendor, product_id=vendor.products[1].id, label="Broken hook")
    db.session.execute(db.update(Webhook).where(Webhook.id == broken.id).values(out_of_order=True))
    db.session.commit()
    connection = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(dispatch.QUEUE_NAME, connection=connection)

    def woken() -> list:
        """The delivery jobs queued and doorbell rings since the last look; then a clean slate."""
        jobs = [job.args for job in queue.get_jobs()]
        rang = connection.llen(dispatch.DOORBELL)
        queue.empty()
        connection.delete(dispatch.WAKE_FLAG, dispatch.DOORBELL)
        return [jobs, rang]

    assert post(client, token, event_for(first.product_id)).status_code == 202
    assert woken() == [[([first.id],)], 1]
    # The trigger is still pending: the next events fold into it and wake nobody.
    for _ in range(3):
        assert post(client, token, event_for(first.product_id)).status_code == 202
    assert woken() == [[], 0]
    # The other product's trigger is the event's own; the out-of-order webhook's is not sendable.
    assert post(client, token, event_for(second.product_id)).status_code == 202
    assert woken() == [[([second.id],)], 1]
    assert counted(first, second, broken) == [4, 1, 1]
