"""``GET /public/v1/events`` and ``/events/{id}`` with an account's API token: which events an
account sees, the RQL filters, pages, and the index PostgreSQL reads a webhook's events through
(docs/architecture.md, "Following events")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, move_event, post_event
from tests.openapi_conformance import assert_conforms
from webhookapp.core.times import isoformat, utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Event

URL = "/public/v1/events"


def get(client, token: str, query: str = "", path: str = URL):
    return client.get(f"{path}?{query}" if query else path, headers={"Authorization": f"ApiKey {token}"})


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    assert_conforms(response, "/events", "get")
    return [event["id"] for event in response.get_json()]


def fulfillment(client, token: str, product_id: str, **extra) -> str:
    status, body = post_event(client, token, object_class="fulfillment_request", product_id=product_id, **extra)
    assert status == 202, body
    return body["id"]


def test_an_account_sees_the_events_it_posted_and_those_its_webhooks_matched(client, vendor, other_vendor):
    mine = make_webhook(vendor, label="Mine")
    theirs = make_webhook(other_vendor, label="Theirs")
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token = api_token(platform.account, platform=True)
    vendor_token, other_token = api_token(vendor.account), api_token(other_vendor.account)

    posted = fulfillment(client, vendor_token, mine.product_id, id="order-1")
    unmatched = post_event(client, vendor_token, object_class="usage_file", product_id=mine.product_id)[1]["id"]
    rung_by_platform = fulfillment(client, platform_token, mine.product_id)  # stored under the platform
    other_platform = fulfillment(client, platform_token, theirs.product_id)
    foreign = fulfillment(client, other_token, theirs.product_id, id="order-1")

    assert set(ids(get(client, vendor_token))) == {posted, unmatched, rung_by_platform}
    assert set(ids(get(client, other_token))) == {other_platform, foreign}
    assert set(ids(get(client, platform_token))) == {rung_by_platform, other_platform}
    by_id = {event["id"]: event for event in get(client, vendor_token).get_json()}
    assert by_id[posted]["webhooks"] == [mine.id] and by_id[posted]["external_id"] == "order-1"
    assert by_id[unmatched]["webhooks"] == [] and by_id[unmatched]["object_class"] == "usage_file"
    assert by_id[rung_by_platform]["webhooks"] == [mine.id] and by_id[rung_by_platform]["external_id"] is None
    assert all(event["webhooks"] == [] for event in get(client, platform_token).get_json())  # none of its own

    one = get(client, vendor_token, path=f"{URL}/{rung_by_platform}")
    assert one.status_code == 200 and one.get_json() == by_id[rung_by_platform]
    assert_conforms(one, "/events/{event_id}", "get")
    for event_id in (foreign, other_platform, "EV-000-000-000-000"):
        missing = get(client, vendor_token, path=f"{URL}/{event_id}")
        assert missing.status_code == 404 and missing.get_json() == {
            "error_code": "EV_404", "errors": [f"Event {event_id} not found."]}  # fmt: skip
    assert get(client, "whk_wrong").status_code == 401


def test_a_webhook_s_events_newest_first_with_every_filter(client, vendor, other_vendor):
    orders = make_webhook(vendor, label="Orders")
    audit = make_webhook(vendor, label="Audit", active=False)  # matched nothing
    theirs = make_webhook(other_vendor)
    token = api_token(vendor.account)
    made = [fulfillment(client, token, orders.product_id, id=f"c-{n}", object_id=f"PR-{n % 2}") for n in range(5)]
    other_product = fulfillment(client, token, vendor.products[1].id)
    for n, event_id in enumerate(made):  # a minute apart, on whole seconds as the API shows them
        move_event(event_id, utcnow().replace(microsecond=0) - timedelta(minutes=10 - n))
    db.session.commit()
    newest_first = made[::-1]

    assert ids(get(client, token, f"webhook.id={orders.id}")) == newest_first
    assert ids(get(client, token, f"eq(webhook.id,{orders.id})&ordering(created_at)")) == made
    assert ids(get(client, token, f"in(webhook.id,({orders.id},{audit.id}))")) == newest_first
    assert ids(get(client, token, f"eq(webhook.id,{audit.id})")) == []
    assert ids(get(client, token, f"eq(webhook.id,{theirs.id})")) == []  # another account's: nothing
    assert ids(get(client, token, f"ne(webhook.id,{orders.id})")) == [other_product]
    assert ids(get(client, token, "external_id=c-3")) == [made[3]]
    assert ids(get(client, token, "eq(object_id,PR-1)")) == [made[3], made[1]]
    assert ids(get(client, token, f"eq(id,{made[2]})")) == [made[2]]
    assert ids(get(client, token, f"eq(product.id,{vendor.products[1].id})")) == [other_product]
    assert ids(get(client, token, "eq(object_class,usage_file)")) == []
    middle = db.session.get(Event, made[2]).created_at
    assert ids(get(client, token, f"gt(created_at,{isoformat(middle)})&webhook.id={orders.id}")) == newest_first[:2]
    assert ids(get(client, token, f"ge(created_at,{isoformat(middle)})&webhook.id={orders.id}")) == newest_first[:3]
    assert ids(get(client, token, f"lt(created_at,{isoformat(middle)})")) == [made[1], made[0]]
    assert ids(get(client, token, f"le(created_at,{isoformat(middle)})")) == [made[2], made[1], made[0]]

    page = get(client, token, f"webhook.id={orders.id}&limit=2&offset=2")
    assert ids(page) == newest_first[2:4] and page.headers["Content-Range"] == "items 2-3/5"
    assert "X-Total-Estimated" not in page.headers


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ilike(created_at,x*)", "applies to text fields"),
        ("like(webhook.id,WH*)", "applies to text fields"),
        ("gt(external_id,a)", "applies to times and numbers"),
        ("ordering(webhook.id)", "Cannot order by 'webhook.id'"),
        ("eq(webhooks,WH-1)", "Cannot filter on 'webhooks'"),
        ("gt(created_at,soon)", "not an ISO 8601"),
        ("search=x", "no search"),
    ],
)
def test_refused_queries_say_why(client, vendor, query, message):
    response = get(client, api_token(vendor.account), query)
    assert response.status_code == 400
    assert_conforms(response, "/events", "get")
    assert any(message in error for error in response.get_json()["errors"]), response.get_json()
