"""The reads of events PostgreSQL answers by index probes and ranges, whatever the number of
events: proved by the rows the executed plan read (``EXPLAIN (ANALYZE, FORMAT JSON)``), not by
its shape alone (docs/architecture.md, "Following events")."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import and_, func, select, text

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, post_event
from tests.plans import analyze, scans
from webhookapp.core.times import utcnow
from webhookapp.engine import matches
from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import Backfill, Event
from webhookapp.services import event_queries

# -- the list's search by an event's ids ---------------------------------------------------


@pytest.mark.postgresql
def test_the_search_by_an_event_s_ids_probes_each_index_once(client, postgresql, vendor, other_vendor):
    mine = make_webhook(vendor)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    fulfillment = {"object_class": "fulfillment_request", "product_id": mine.product_id}
    own = post_event(client, api_token(vendor.account), id="order-77", object_id="PR-77", **fulfillment)[1]["id"]
    post_event(client, api_token(platform.account, platform=True), id="platform-9", **fulfillment)
    # 20,000 events of another account, with client ids and object ids of every kind.
    db.session.execute(text(
        "INSERT INTO events (id, account_id, client_event_id, object_class, product_id, object_id, webhook_ids,"
        " created_at) SELECT 'EV-' || lpad((n / 1000)::text, 3, '0') || '-' || lpad((n % 1000)::text, 3, '0')"
        " || '-000-000', :account, 'order-' || n, 'fulfillment_request', 'PRD-1', 'PR-' || n, '[]'::json,"
        " now() - n * interval '1 second' FROM generate_series(1, 20000) AS n"),
        {"account": other_vendor.account.id})  # fmt: skip
    db.session.commit()
    analyze("events")

    for search, expected in (
        (own, {mine.id}), (own.lower(), {mine.id}), ("order-77", {mine.id}), ("platform-9", {mine.id}),
        ("PR-77", {mine.id}), ("order-5", set()), ("PR-5", set()), ("fulfillment", set()),
    ):  # fmt: skip
        found = event_queries.matched_by(vendor.account, search)
        assert found & {mine.id} == expected, search
        query = event_queries.matched_query(vendor.account, search)
        read = scans(query)
        assert len(read) == 3, read  # one probe per kind of id
        for scan in read:
            assert scan["Node Type"] in ("Index Scan", "Bitmap Index Scan"), scan
            leading = {"pk_events": "id", "ix_events_object_id": "object_id"}.get(scan["Index Name"], "account_id")
            assert re.match(rf"\(+{leading}\)?(::text)? = ", scan["Index Cond"]), scan  # its leading column
        assert sum(scan["read"] for scan in read) <= 3, read  # PR-5 is an event of theirs: read, not kept
    db.session.rollback()


# -- the events an account may see ---------------------------------------------------------


@pytest.mark.postgresql
def test_the_feed_of_an_account_without_events_of_its_own_reads_a_page_and_its_bound(
    client, postgresql, vendor, distributor
):
    mine = make_webhook(vendor)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token = api_token(platform.account, platform=True)
    # 50,000 events posted with the platform's token, every third for the vendor's webhook: more
    # than the count's bound are the vendor's, none posted by it.
    db.session.execute(text(
        "INSERT INTO events (id, account_id, object_class, product_id, object_id, webhook_ids, created_at)"
        " SELECT 'EV-' || lpad((n / 1000)::text, 3, '0') || '-' || lpad((n % 1000)::text, 3, '0') || '-000-000',"
        " :platform, 'fulfillment_request', :product, 'PR-' || n,"
        " CASE WHEN n % 3 = 0 THEN json_build_array(CAST(:hook AS text)) ELSE '[]'::json END,"
        " now() - n * interval '1 second' FROM generate_series(1, 50000) AS n"),
        {"platform": platform.account.id, "product": mine.product_id, "hook": mine.id})  # fmt: skip
    db.session.execute(text(
        "INSERT INTO event_feeds (account_id, created_at, event_id) SELECT :vendor, created_at, id FROM events"
        " WHERE webhook_ids::text <> '[]'"), {"vendor": vendor.account.id})  # fmt: skip
    set_id = matches.set_for([mine.id])
    db.session.execute(text("UPDATE events SET match_set_id = :set WHERE webhook_ids::text <> '[]'"), {"set": set_id})
    db.session.execute(text(  # and ten other accounts' feeds, each twice as long
        "INSERT INTO event_feeds (account_id, created_at, event_id) SELECT 'VA-000-' || lpad(n::text, 3, '0'),"
        " created_at, id FROM events, generate_series(1, 10) AS n WHERE webhook_ids::text = '[]'"))  # fmt: skip
    db.session.commit()
    for table in ("events", "event_feeds"):
        analyze(table)
    newest = post_event(client, platform_token, object_class="fulfillment_request", product_id=mine.product_id)
    analyze("event_feeds")

    vendor_token = api_token(vendor.account)
    response = client.get("/public/v1/events?limit=20", headers={"Authorization": f"ApiKey {vendor_token}"})
    assert response.status_code == 200
    page = [event["id"] for event in response.get_json()]
    expected = ["EV-000-003-000-000", *(f"EV-{n // 1000:03d}-{n % 1000:03d}-000-000" for n in range(6, 58, 3))]
    assert page == [newest[1]["id"], *expected[:19]]
    assert response.headers["Content-Range"].startswith("items 0-19/")

    listed = event_queries.visible_events(vendor.account)
    assert listed.keys is not None
    feed, key = listed.keys(None)
    for offset in (0, 20, 500):
        keys = scans(paging._keys(feed, key).offset(offset).limit(20))
        assert all(scan["read"] <= offset + 20 for scan in keys), keys  # a page: no scan of the rest
    bounded = paging._keys(feed, key).order_by(None).limit(paging.COUNT_BOUND + 1).subquery()
    counted = scans(select(func.count()).select_from(bounded))
    assert sum(scan["read"] for scan in counted) <= paging.COUNT_BOUND + 1, counted  # the bound, not 16,667
    # Filtered: an hour's range narrows both ranges; an object id is one probe of its index, then
    # of the ranges' keys.
    hours_ago = utcnow() - timedelta(hours=3)
    an_hour = listed.keys(and_(Event.created_at >= hours_ago, Event.created_at < hours_ago + timedelta(hours=1)))
    hour = scans(paging._keys(*an_hour).limit(20))
    assert sum(scan["read"] for scan in hour if scan.get("Index Name") != "pk_events") <= 20, hour
    by_object = scans(paging._keys(*listed.keys(Event.object_id == "PR-300")).limit(20))
    assert sum(scan["read"] for scan in by_object) <= 4, by_object
    by_id = scans(paging._keys(*listed.keys(Event.id == expected[3])).limit(20))
    assert sum(scan["read"] for scan in by_id) <= 4, by_id
    # The vendor's own webhook: that webhook's range of events, newest first, and no feed row read
    # (its match set's range of the events: a page of them).
    by_webhook = scans(paging._keys(*listed.keys(event_queries.webhook_filter(vendor.account)(mine.id))).limit(20))
    assert not [scan for scan in by_webhook if "event_feeds" in str(scan.get("Relation Name", scan.get("Index Name")))]
    assert sum(scan["read"] for scan in by_webhook) <= 21, by_webhook
    one = scans(select(Event).where(Event.id == expected[3], event_queries.visible_condition(vendor.account)))
    assert sum(scan["read"] for scan in one) <= 2, one  # the event, then its feed row: two probes
    theirs = event_queries.visible_events(distributor.account)
    assert theirs.keys is not None
    other = scans(paging._keys(*theirs.keys(None)).limit(20))
    assert sum(scan["read"] for scan in other) == 0, other  # nothing of its own nor in its feed: nothing read
    db.session.rollback()


# -- a webhook's events ----------------------------------------------------------------------


@pytest.mark.postgresql
def test_a_webhook_s_events_are_the_ranges_of_its_sets(client, postgresql, vendor):
    hook = make_webhook(vendor)
    # 30,000 events of one product, each matched by one of 600 other webhooks, and one in sixty by
    # this one too (with one of ten others): its 500 events are the ranges of its ten sets,
    # however many events share its product.
    db.session.execute(text(
        "INSERT INTO events (id, account_id, object_class, product_id, webhook_ids, created_at)"
        " SELECT 'EV-' || lpad((n / 1000)::text, 3, '0') || '-' || lpad((n % 1000)::text, 3, '0') || '-000-000',"
        " :account, 'fulfillment_request', CAST(:product AS text),"
        " CASE WHEN n % 60 = 0 THEN json_build_array(CAST(:hook AS text), 'WH-' || (n / 60) % 10)"
        " ELSE json_build_array('WH-' || n % 600) END,"
        " now() - n * interval '1 second' FROM generate_series(1, 30000) AS n"),
        {"account": vendor.account.id, "product": hook.product_id, "hook": hook.id})  # fmt: skip
    db.session.add(Backfill(name=matches.BACKFILL, position=None, done=False))
    db.session.commit()
    assert matches.backfill() == 30_000
    analyze("events")
    assert len(event_queries.sets_of(hook.id)) == 10

    page = event_queries.events_page(hook, per_page=20, before=None)
    assert [event.id for event in page.items] == [event_id_of(n) for n in range(60, 1201, 60)]
    assert str(page.total) == "500" and page.older
    older = event_queries.events_page(hook, per_page=20, before=page.older)
    assert [event.id for event in older.items] == [event_id_of(n) for n in range(1260, 2401, 60)]
    found = event_queries.webhook_events(hook)
    deep = found.query.where(found.moment < older.items[-1].created_at)
    read = scans(deep.order_by(found.moment.desc(), found.key.desc()).limit(21))
    # At most a page from each set's range, and the page's events by key: past pages unread.
    assert sum(scan["read"] for scan in read) <= 10 * 21 + 21, read
    assert not [scan for scan in read if scan.get("Index Name") == "ix_events_created_at"], read
    counted = scans(paging._keys(found.query, found.key).limit(paging.COUNT_BOUND + 1))
    ranges = [scan for scan in counted if scan.get("Index Name") == "ix_events_match_set_created"]
    assert sum(scan["read"] for scan in ranges) == 500, counted
    # The API's filter, for the account and for a handler calling back: the same ranges.
    for listed in (event_queries.visible_events(vendor.account), event_queries.webhook_listed(hook)):
        assert listed.keys is not None
        keys = listed.keys(event_queries.webhook_filter(vendor.account)(hook.id))
        read = scans(paging._keys(*keys).offset(20).limit(20))
        assert sum(scan["read"] for scan in read) <= 10 * 40 + 40, read
        assert not [scan for scan in read if scan.get("Index Name") == "ix_events_created_at"], read
    db.session.rollback()


def event_id_of(n: int) -> str:
    return f"EV-{n // 1000:03d}-{n % 1000:03d}-000-000"
