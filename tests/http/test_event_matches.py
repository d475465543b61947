"""``event_matches``: a row per webhook an event matched, written with the event (one statement,
or one per group on PostgreSQL), backfilled for older events (read the slower way meanwhile),
pruned with them and purged with a deleted webhook (docs/architecture.md, "Following events")."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, move_event, post_event
from webhookapp.core.times import utcnow
from webhookapp.engine import maintenance, matches
from webhookapp.engine.ingest import postgresql as ingest_postgresql
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken, Backfill, Event, EventMatch
from webhookapp.services import webhook_changes

URL = "/public/v1/events"


def rows() -> set[tuple[str, str]]:
    return set(db.session.execute(select(EventMatch.webhook_id, EventMatch.event_id)).all())


def of_webhook(client, token: str, webhook_id: str) -> list[str]:
    response = client.get(f"{URL}?eq(webhook.id,{webhook_id})", headers={"Authorization": f"ApiKey {token}"})
    assert response.status_code == 200, response.get_json()
    return [event["id"] for event in response.get_json()]


def test_an_event_gets_a_row_per_webhook_it_matched(client, vendor, distributor):
    mine = [make_webhook(vendor, label=f"Mine {n}") for n in range(2)]
    theirs = make_webhook(distributor, label="Theirs", product_id=mine[0].product_id)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token, vendor_token = api_token(platform.account, platform=True), api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": mine[0].product_id}

    rung = post_event(client, platform_token, **body)[1]
    own = post_event(client, vendor_token, **body)[1]
    # The platform's event matched every account's webhooks; the vendor's its own alone.
    assert rows() == {
        *((hook.id, rung["id"]) for hook in (*mine, theirs)),
        *((hook.id, own["id"]) for hook in mine),
    }
    times = dict(db.session.execute(select(Event.id, Event.created_at)).all())
    assert all(row.created_at == times[row.event_id] for row in db.session.scalars(select(EventMatch)))
    assert of_webhook(client, vendor_token, mine[1].id) == [own["id"], rung["id"]]
    assert of_webhook(client, api_token(distributor.account), theirs.id) == [rung["id"]]
    assert of_webhook(client, api_token(distributor.account), mine[1].id) == []  # not its webhook


def test_a_group_of_events_writes_its_rows_in_its_statement(app, postgresql, vendor, distributor):
    mine = make_webhook(vendor)
    theirs = make_webhook(distributor, product_id=mine.product_id)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    api_token(platform.account, platform=True)
    token = db.session.scalar(select(ApiToken).where(ApiToken.account_id == platform.account.id))
    now = utcnow()
    group = [
        ingest_postgresql._Waiting(ingest_postgresql.parameters(
            token.token_hash, {"object_class": "fulfillment_request", "product_id": mine.product_id},
            event_id=f"EV-000-000-000-00{n}", now=now + timedelta(microseconds=n)), wake=False)
        for n in range(3)
    ]  # fmt: skip
    ingest_postgresql._run(db.engine, group)
    events = [f"EV-000-000-000-00{n}" for n in range(3)]
    assert rows() == {(hook.id, event) for hook in (mine, theirs) for event in events}
    times = dict(db.session.execute(select(Event.id, Event.created_at)).all())
    assert all(row.created_at == times[row.event_id] for row in db.session.scalars(select(EventMatch)))


def test_older_events_are_read_the_slower_way_until_the_backfill_is_done(client, app, auth, vendor):
    hook = make_webhook(vendor)
    gone = make_webhook(vendor, label="Deleted later")
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    events = [post_event(client, token, **body)[1]["id"] for _ in range(5)]
    written = rows()
    webhook_changes.delete_webhook(gone)
    # As after migration 0026 on a database with events: no rows, the backfill to do.
    db.session.execute(delete(EventMatch))
    db.session.execute(update(Backfill).where(Backfill.name == matches.BACKFILL).values(done=False, position=None))
    if db.session.get(Backfill, matches.BACKFILL) is None:
        db.session.add(Backfill(name=matches.BACKFILL, position=None, done=False))
    db.session.commit()
    assert not matches.complete()
    newest_first = events[::-1]
    assert of_webhook(client, token, hook.id) == newest_first
    auth.login()
    tab = client.get(f"/webhooks/{hook.id}?tab=events")
    assert all(event_id in tab.get_data(as_text=True) for event_id in events)

    result = app.test_cli_runner().invoke(args=["events", "backfill-matches", "--batch-size", "2", "--verbose"])
    assert result.exit_code == 0, result.output
    assert "5 rows added" in result.output  # the deleted webhook's are left out
    assert rows() == {row for row in written if row[0] != gone.id}
    assert matches.complete()
    assert of_webhook(client, token, hook.id) == newest_first
    tab = client.get(f"/webhooks/{hook.id}?tab=events")
    assert all(event_id in tab.get_data(as_text=True) for event_id in events)


def test_pruning_and_deleting_a_webhook_remove_its_rows(client, app, vendor):
    hook = make_webhook(vendor)
    other = make_webhook(vendor, label="Other")
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    old, recent = (post_event(client, token, **body)[1]["id"] for _ in range(2))
    move_event(old, utcnow() - timedelta(days=app.config["WEBHOOK_EVENT_RETENTION_DAYS"] + 1))
    db.session.commit()

    removed = maintenance.prune()
    assert removed is not None and removed["events"] == 1 and removed["event_matches"] == 2
    assert rows() == {(hook.id, recent), (other.id, recent)}
    webhook_changes.delete_webhook(other)
    maintenance.purge_deleted(other.id)
    assert rows() == {(hook.id, recent)}


def test_filters_on_two_webhooks_combine_as_written(client, vendor, other_vendor):
    """One webhook's range is read; a test of another webhook inside it stays that webhook's own."""
    first = make_webhook(vendor, label="First")
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": first.product_id}
    alone = post_event(client, token, **body)[1]["id"]
    second = make_webhook(vendor, label="Second")
    both = post_event(client, token, **body)[1]["id"]
    theirs = make_webhook(other_vendor)
    headers = {"Authorization": f"ApiKey {token}"}

    def listed(query: str) -> list[str]:
        response = client.get(f"{URL}?{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return [event["id"] for event in response.get_json()]

    assert listed(f"eq(webhook.id,{first.id})") == [both, alone]
    assert listed(f"and(eq(webhook.id,{first.id}),not(eq(webhook.id,{second.id})))") == [alone]
    assert listed(f"and(eq(webhook.id,{first.id}),eq(webhook.id,{second.id}))") == [both]
    assert listed(f"and(eq(webhook.id,{second.id}),or(eq(webhook.id,{first.id}),eq(object_id,none)))") == [both]
    assert listed(f"or(eq(webhook.id,{second.id}),eq(webhook.id,{first.id}))") == [both, alone]
    assert listed(f"and(eq(webhook.id,{first.id}),eq(webhook.id,{theirs.id}))") == []
    assert listed(f"eq(webhook.id,{theirs.id})") == []
