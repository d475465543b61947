"""Match sets: each event notes the set of webhooks it matched, made by the first event that
matches it (in the ingest statement, or the group's, on PostgreSQL); older events get theirs from
a backfill (read the slower way meanwhile); a deleted webhook leaves its sets
(docs/architecture.md, "Following events")."""

from __future__ import annotations

import threading

from sqlalchemy import delete, func, select, update

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, platform_group, post_event
from webhookapp.core.times import utcnow
from webhookapp.engine import maintenance, matches, runtime
from webhookapp.engine.ingest import postgresql as ingest_postgresql
from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken, Backfill, Event, EventFeed, MatchSet, MatchSetWebhook, tenancy
from webhookapp.services import tokens, webhook_changes

URL = "/public/v1/events"


def rows() -> set[tuple[str, str]]:
    """(webhook, event) for every webhook of every event's set."""
    query = select(MatchSetWebhook.webhook_id, Event.id).join(Event, Event.match_set_id == MatchSetWebhook.set_id)
    return set(db.session.execute(query).all())


def sets() -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for set_id, webhook_id in db.session.execute(select(MatchSetWebhook.set_id, MatchSetWebhook.webhook_id)):
        found.setdefault(set_id, set()).add(webhook_id)
    return found


def of_webhook(client, token: str, webhook_id: str) -> list[str]:
    response = client.get(f"{URL}?eq(webhook.id,{webhook_id})", headers={"Authorization": f"ApiKey {token}"})
    assert response.status_code == 200, response.get_json()
    return [event["id"] for event in response.get_json()]


def test_an_event_notes_the_set_of_webhooks_it_matched(client, vendor, distributor):
    mine = [make_webhook(vendor, label=f"Mine {n}") for n in range(2)]
    theirs = make_webhook(distributor, label="Theirs", product_id=mine[0].product_id)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token, vendor_token = api_token(platform.account, platform=True), api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": mine[0].product_id}

    rung = post_event(client, platform_token, **body)[1]
    own = post_event(client, vendor_token, **body)[1]
    again = [post_event(client, token, **body)[1] for token in (platform_token, vendor_token)]
    # The platform's event matched every account's webhooks; the vendor's its own alone: two
    # sets, made by the first event of each, and taken by the next.
    assert rows() == {
        *((hook.id, event["id"]) for hook in (*mine, theirs) for event in (rung, again[0])),
        *((hook.id, event["id"]) for hook in mine for event in (own, again[1])),
    }
    assert sorted(map(sorted, sets().values())) == sorted(
        [sorted(h.id for h in (*mine, theirs)), sorted(h.id for h in mine)]
    )
    assert db.session.scalar(select(func.count()).select_from(MatchSet)) == 2
    assert of_webhook(client, vendor_token, mine[1].id) == [again[1]["id"], again[0]["id"], own["id"], rung["id"]]
    assert of_webhook(client, api_token(distributor.account), theirs.id) == [again[0]["id"], rung["id"]]
    assert of_webhook(client, api_token(distributor.account), mine[1].id) == []  # not its webhook


def test_a_group_of_events_makes_its_set_in_its_statement(app, postgresql, vendor, distributor):
    mine = make_webhook(vendor)
    theirs = make_webhook(distributor, product_id=mine.product_id)
    events = platform_group(mine.product_id)
    assert rows() == {(hook.id, event) for hook in (mine, theirs) for event in events}
    assert list(sets().values()) == [{mine.id, theirs.id}]
    assert list(db.session.scalars(select(MatchSet.digest))) == [matches.digest([mine.id, theirs.id])]


def test_older_events_are_read_the_slower_way_until_the_backfill_is_done(client, app, auth, vendor):
    hook = make_webhook(vendor)
    gone = make_webhook(vendor, label="Deleted later")
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    events = [post_event(client, token, **body)[1]["id"] for _ in range(5)]
    written = rows()
    webhook_changes.delete_webhook(gone)
    # As after migration 0026 on a database with events: no sets, the backfill to do.
    db.session.execute(update(Event).values(match_set_id=None))
    db.session.execute(delete(MatchSetWebhook))
    db.session.execute(delete(MatchSet))
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
    assert "5 events given their set" in result.output
    assert rows() == written  # the deleted webhook too, as in the events' lists
    assert matches.complete()
    assert of_webhook(client, token, hook.id) == newest_first
    tab = client.get(f"/webhooks/{hook.id}?tab=events")
    assert all(event_id in tab.get_data(as_text=True) for event_id in events)


def test_a_deleted_webhook_leaves_its_sets_and_the_backfill_resumes(client, app, vendor):
    hook = make_webhook(vendor)
    other = make_webhook(vendor, label="Other")
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    events = [post_event(client, token, **body)[1]["id"] for _ in range(4)]
    webhook_changes.delete_webhook(other)
    maintenance.purge_deleted(other.id)
    assert list(sets().values()) == [{hook.id}]  # the set stays: the events name it
    assert of_webhook(client, token, hook.id) == events[::-1]

    # Stopped half-way: the next run starts where the last batch ended.
    halfway = db.session.execute(select(Event.created_at, Event.id).order_by(Event.created_at, Event.id)).all()[1]
    db.session.execute(update(Event).where(Event.created_at > halfway.created_at).values(match_set_id=None))
    position = f"{paging.cursor(halfway.created_at, 0)[:-2]} {halfway.id}"
    db.session.add(Backfill(name=matches.BACKFILL, position=position, done=False))
    db.session.commit()
    assert matches.backfill(batch_size=1) == 2
    assert db.session.scalar(select(func.count()).where(Event.match_set_id.is_(None))) == 0
    assert of_webhook(client, token, hook.id) == events[::-1]


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


def test_a_token_known_not_to_be_a_platform_s_skips_the_feed_rows(client, postgresql, vendor, distributor):
    """The process remembers each token's platform flag from its statements: a vendor's next
    events run the statement without feeds, a platform's keep writing their rows."""
    mine = make_webhook(vendor)
    make_webhook(distributor, product_id=mine.product_id)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    platform_token, vendor_token = api_token(platform.account, platform=True), api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": mine.product_id}
    for token in (platform_token, vendor_token, platform_token, vendor_token):
        assert post_event(client, token, **body)[0] == 202
    remembered = runtime.current().group_commit._platform
    assert remembered == {tenancy.digest(platform_token): True, tenancy.digest(vendor_token): False}
    fed = db.session.scalars(select(EventFeed.event_id).where(EventFeed.account_id == vendor.account.id)).all()
    posted = db.session.scalars(select(Event.id).where(Event.account_id == platform.account.id)).all()
    assert sorted(fed) == sorted(posted) and len(posted) == 2
    assert not db.session.scalars(select(EventFeed.event_id).where(EventFeed.account_id == platform.account.id)).all()


def test_events_of_a_new_set_stored_at_once_share_one_set(app, postgresql, vendor):
    hooks = [make_webhook(vendor, label=f"Hook {n}") for n in range(3)]
    token = db.session.scalar(select(ApiToken).where(ApiToken.id == tokens.create_token(vendor.account, "t")[0].id))
    body = {"object_class": "fulfillment_request", "product_id": hooks[0].product_id}
    start = threading.Barrier(4)

    def store(n: int) -> None:
        with app.app_context():
            start.wait()
            waiting = ingest_postgresql._Waiting(
                ingest_postgresql.parameters(token.token_hash, body, event_id=f"EV-000-000-001-00{n}", now=utcnow()),
                wake=False,
            )
            ingest_postgresql._run(db.engine, [waiting])

    threads = [threading.Thread(target=store, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list(sets().values()) == [{hook.id for hook in hooks}]
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.match_set_id.is_not(None))) == 4
