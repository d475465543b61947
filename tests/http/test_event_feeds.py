"""``event_feeds``: the rows that let an account find the events a platform token posted for its
webhooks, written with the event (one statement, or one per group on PostgreSQL), backfilled for
older events, pruned with them (docs/architecture.md, "Following events")."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, platform_group, post_event
from webhookapp.core.times import utcnow
from webhookapp.engine import feeds, maintenance
from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import Backfill, Event, EventFeed

URL = "/public/v1/events"


def listed(client, token: str) -> list[str]:
    response = client.get(URL, headers={"Authorization": f"ApiKey {token}"})
    assert response.status_code == 200, response.get_json()
    return [event["id"] for event in response.get_json()]


def rows() -> set[tuple[str, str]]:
    return set(db.session.execute(select(EventFeed.account_id, EventFeed.event_id)).all())


def test_a_platform_event_gets_a_row_per_other_account_matched(client, vendor, distributor):
    mine = [make_webhook(vendor, label=f"Mine {n}") for n in range(2)]
    theirs = make_webhook(distributor, label="Theirs", product_id=mine[0].product_id)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    make_webhook(platform, label="The platform's own", product_id=mine[0].product_id)
    platform_token, vendor_token = api_token(platform.account, platform=True), api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": mine[0].product_id}

    status, rung = post_event(client, platform_token, **body)
    assert status == 202 and set(rung["webhooks"]) >= {mine[0].id, mine[1].id, theirs.id}
    status, own = post_event(client, vendor_token, **body)
    assert status == 202
    # One row per other account, whatever its number of webhooks; none for the poster, none for
    # an event posted for one's own webhooks.
    assert rows() == {(vendor.account.id, rung["id"]), (distributor.account.id, rung["id"])}
    stored = db.session.get(Event, rung["id"])
    assert {row.created_at for row in db.session.scalars(select(EventFeed))} == {stored.created_at}

    assert listed(client, vendor_token) == [own["id"], rung["id"]]
    assert listed(client, api_token(distributor.account)) == [rung["id"]]
    assert set(listed(client, platform_token)) == {rung["id"]}
    stranger = make_tenant("vendor", "Stranger", "s@stranger.test")
    assert listed(client, api_token(stranger.account)) == []
    one = client.get(f"{URL}/{rung['id']}", headers={"Authorization": f"ApiKey {api_token(stranger.account)}"})
    assert one.status_code == 404


def test_a_group_of_events_writes_its_feed_rows_in_its_statement(app, postgresql, vendor, distributor):
    mine = make_webhook(vendor)
    make_webhook(distributor, product_id=mine.product_id)
    events = platform_group(mine.product_id)
    expected = {(account.id, event) for account in (vendor.account, distributor.account) for event in events}
    assert rows() == expected
    times = dict(db.session.execute(select(Event.id, Event.created_at)).all())
    assert all(row.created_at == times[row.event_id] for row in db.session.scalars(select(EventFeed)))


def test_the_backfill_gives_older_events_their_rows_and_resumes(client, app, vendor, other_vendor):
    mine = make_webhook(vendor)
    theirs = make_webhook(other_vendor)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token, vendor_token = api_token(platform.account, platform=True), api_token(vendor.account)
    events = [
        post_event(client, platform_token, object_class="fulfillment_request", product_id=hook.product_id)[1]["id"]
        for hook in (mine, theirs, mine, theirs, mine)
    ]
    post_event(client, vendor_token, object_class="fulfillment_request", product_id=mine.product_id)
    written = rows()
    assert len(written) == 5
    db.session.execute(delete(EventFeed))  # as before the migration
    db.session.commit()
    assert len(listed(client, vendor_token)) == 1  # its own alone: the feed is what shows the others

    runner = app.test_cli_runner()
    result = runner.invoke(args=["events", "backfill-feeds", "--batch-size", "2", "--verbose"])
    assert result.exit_code == 0, result.output
    assert "5 rows added" in result.output
    assert rows() == written
    state = db.session.get(Backfill, feeds.BACKFILL)
    assert state.done and state.position.endswith(db.session.scalar(
        select(Event.id).order_by(Event.created_at.desc(), Event.id.desc()).limit(1)))  # fmt: skip

    # Stopped half-way: the next run starts where the last batch ended, skipping rows already there.
    halfway = db.session.execute(
        select(Event.created_at, Event.id).order_by(Event.created_at, Event.id).offset(2).limit(1)
    ).one()
    db.session.execute(delete(EventFeed).where(EventFeed.created_at > halfway.created_at))
    db.session.execute(update(Backfill).values(done=False, position=_cursor(halfway)))
    db.session.commit()
    missing = written - rows()
    assert missing and feeds.backfill(batch_size=2) == len(missing)
    assert rows() == written
    assert set(listed(client, vendor_token)) >= {events[0], events[2], events[4]}
    assert set(listed(client, api_token(other_vendor.account))) == {events[1], events[3]}


def _cursor(row) -> str:
    return f"{paging.cursor(row.created_at, 0)[:-2]} {row.id}"


def test_pruning_removes_the_rows_of_the_events_it_removes(client, app, vendor):
    mine = make_webhook(vendor)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token = api_token(platform.account, platform=True)
    old, recent = (
        post_event(client, platform_token, object_class="fulfillment_request", product_id=mine.product_id)[1]["id"]
        for _ in range(2)
    )
    days = app.config["WEBHOOK_EVENT_RETENTION_DAYS"] + 1
    for model, key in ((Event, Event.id), (EventFeed, EventFeed.event_id)):
        db.session.execute(
            update(model).where(key == old).values(created_at=utcnow() - timedelta(days=days))
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    db.session.commit()

    removed = maintenance.prune()
    assert removed is not None and removed["events"] == 1 and removed["event_feeds"] == 1
    assert rows() == {(vendor.account.id, recent)}
    assert listed(client, api_token(vendor.account)) == [recent]


def test_the_feed_filtered_ordered_and_paged(client, vendor, distributor):
    """Filters go inside both ranges: by object id, time, webhook; a client's order and offsets
    give the same events as the default order."""
    mine = make_webhook(vendor)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token, vendor_token = api_token(platform.account, platform=True), api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": mine.product_id}
    fed = [post_event(client, platform_token, object_id=f"PR-{n}", **body)[1]["id"] for n in range(4)]
    own = post_event(client, vendor_token, object_id="PR-1", **body)[1]["id"]
    post_event(client, api_token(distributor.account), object_id="PR-1", **body)  # not the vendor's
    everything = [own, *reversed(fed)]
    times = {event_id: utcnow() - timedelta(hours=n) for n, event_id in enumerate(everything)}
    for event_id, moment in times.items():  # an hour apart, newest first
        for model, key in ((Event, Event.id), (EventFeed, EventFeed.event_id)):
            db.session.execute(update(model).where(key == event_id).values(created_at=moment)
                               .execution_options(synchronize_session=False))  # fmt: skip
    db.session.commit()

    def get(query: str) -> tuple[list[str], str]:
        response = client.get(f"{URL}?{query}", headers={"Authorization": f"ApiKey {vendor_token}"})
        assert response.status_code == 200, response.get_json()
        return [event["id"] for event in response.get_json()], response.headers["Content-Range"]

    assert get("limit=10") == (everything, "items 0-4/5")
    assert get("limit=2&offset=2") == (everything[2:4], "items 2-3/5")
    assert get("eq(object_id,PR-1)")[0] == [own, fed[1]]
    since, until = (times[event_id].replace(tzinfo=None).isoformat() for event_id in (fed[1], fed[2]))
    assert get(f"ge(created_at,{since})&le(created_at,{until})")[0] == [fed[2], fed[1]]
    assert get(f"eq(webhook.id,{mine.id})")[0] == everything
    assert get("ordering(created_at)&limit=10")[0] == list(reversed(everything))


def test_a_webhook_filter_reads_its_range_and_never_widens_what_is_visible(client, vendor, distributor):
    """``eq(webhook.id)`` of the account's own webhook reads that webhook's events alone (they
    matched the account's webhook, so they are its to see); any other use of the filter (in an OR,
    negated, another account's webhook) still keeps to the events the account may see."""
    mine = make_webhook(vendor)
    theirs = make_webhook(distributor, label="Theirs", product_id=mine.product_id)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    vendor_token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": mine.product_id}
    fed = post_event(client, api_token(platform.account, platform=True), object_id="PR-1", **body)[1]["id"]
    own = post_event(client, vendor_token, object_id="PR-2", **body)[1]["id"]
    hidden = post_event(client, api_token(distributor.account), object_id="PR-3", **body)[1]["id"]

    def get(query: str) -> list[str]:
        response = client.get(f"{URL}?{query}", headers={"Authorization": f"ApiKey {vendor_token}"})
        assert response.status_code == 200, response.get_json()
        return [event["id"] for event in response.get_json()]

    assert get(f"eq(webhook.id,{mine.id})") == [own, fed]
    assert get(f"eq(webhook.id,{mine.id})&eq(object_id,PR-1)") == [fed]
    assert get(f"and(eq(webhook.id,{mine.id}),eq(object_id,PR-3))") == []
    assert get(f"or(eq(webhook.id,{mine.id}),eq(object_id,PR-3))") == [own, fed]
    assert get(f"not(eq(webhook.id,{mine.id}))") == []
    assert get(f"in(webhook.id,({mine.id},{theirs.id}))") == [own, fed]
    assert get(f"eq(webhook.id,{theirs.id})") == []
    assert get("eq(object_id,PR-3)") == get(f"eq(id,{hidden})") == get("eq(external_id,nothing)") == []
    assert get("eq(object_id,PR-1)") == [fed]
    assert get(f"eq(id,{own})") == [own]
