"""The Events tab of the details page and the events an attempt carried (docs/architecture.md,
"Following events"), through ingest, Redis, an RQ worker and a real handler."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from tests.conftest import make_webhook
from tests.engine import api_token, move_event, post_event, run_worker
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Event

ROW = re.compile(
    r'<td data-label="Arrived">[^<]+</td>\s*'
    r'<td data-label="Event" class="mono small">(?P<id>EV-[\d-]+)</td>\s*'
    r'<td data-label="Client id" class="mono small break">(?P<client>[^<]+)</td>\s*'
    r'<td data-label="Object id" class="mono small break">(?P<object>[^<]+)</td>\s*'
    r'<td data-label="API URL" class="mono small break">(?P<api_url>[^<]+)</td>\s*'
    r'<td data-label="Carried by">(?:<a href="/webhooks/[^/]+/attempts/(?P<attempt>\d+)" class="mono">'
    r'(?P<reference>AT-[\d-]+)</a> <span class="muted small">attempt \d+ of \d+ · |'
    r'<span class="muted">(?P<pending>Pending)</span>)'
)
CARRIED = re.compile(r'<td data-label="Event" class="mono small">(EV-[\d-]+)</td>')


def page(client, url: str, status: int = 200) -> str:
    db.session.expire_all()  # requests share the test's session: let them read what the worker wrote
    response = client.get(url)
    assert response.status_code == status, url
    return html.unescape(response.get_data(as_text=True))


def rows(client, url: str) -> list[dict[str, str | None]]:
    return [match.groupdict() for match in ROW.finditer(page(client, url))]


def post(client, token: str, hook, **extra) -> str:
    status, body = post_event(client, token, object_class=hook.object_class, product_id=hook.product_id, **extra)
    assert status == 202, body
    return body["id"]


def attempts(hook_id: str) -> list[Attempt]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def test_events_newest_first_each_with_the_attempt_that_carried_it(app, client, auth, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/hook"))
    token = api_token(vendor.account)
    first = [post(client, token, hook, id="order-1", object_id="PR-1"),
             post(client, token, hook, api_url="https://api.example.com/v1/")]  # fmt: skip
    run_worker(app)
    handler.wait_for("/hook")
    second = post(client, token, hook, id="order-2")
    run_worker(app)
    handler.wait_for("/hook", 2)
    waiting = post(client, token, hook, id="order-3")  # no worker yet: pending
    one, two = attempts(hook.id)
    auth.login()

    listed = rows(client, f"/webhooks/{hook.id}?tab=events")
    assert [row["id"] for row in listed] == [waiting, second, *first[::-1]]
    assert [row["attempt"] or row["pending"] for row in listed] == ["Pending", str(two.id), str(one.id), str(one.id)]
    assert [row["client"] for row in listed] == ["order-3", "order-2", "—", "order-1"]
    assert listed[3]["object"] == "PR-1"
    assert [row["api_url"] for row in listed][-2:] == ["https://api.example.com/v1/", "http://localhost/public/v1/"]
    text = page(client, f"/webhooks/{hook.id}?tab=events")
    assert '<a href="/webhooks/' + hook.id + '?tab=events" aria-current="page">Events</a>' in text

    carried_by_one = CARRIED.findall(page(client, f"/webhooks/{hook.id}/attempts/{one.id}").split('id="carried"')[1])
    assert carried_by_one == first[::-1]
    carried_by_two = CARRIED.findall(page(client, f"/webhooks/{hook.id}/attempts/{two.id}").split('id="carried"')[1])
    assert carried_by_two == [second]


def test_the_events_tab_pages_like_the_deliveries(app, client, auth, vendor):
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    made = [post(client, token, hook, id=f"c-{n}") for n in range(45)]
    start = utcnow().replace(microsecond=0) - timedelta(hours=1)
    for n, event_id in enumerate(made):
        move_event(event_id, start + timedelta(seconds=n // 2))  # pairs share a second
    db.session.commit()
    auth.login()

    url = f"/webhooks/{hook.id}?tab=events"
    text = page(client, url)
    assert [row["id"] for row in rows(client, url)] == sorted(made, key=_newest_first_key, reverse=True)[:20]
    assert "1–20 of 45" in text and "Newer" not in text
    seen = []
    while True:
        listed = rows(client, url)
        seen += [row["id"] for row in listed]
        older = re.search(r'href="([^"]+)">Older →', page(client, url))
        if not older:
            break
        url = older.group(1).replace("&amp;", "&")
    assert len(seen) == 45 and set(seen) == set(made)
    assert "41–45 of 45" in page(client, url)
    oldest = page(client, f"/webhooks/{hook.id}?tab=events&at=oldest")
    assert "26–45 of 45" in oldest and "Older →" not in oldest
    # A cursor that is not one shows the newest page.
    assert [row["id"] for row in rows(client, f"/webhooks/{hook.id}?tab=events&before=12-x")] == seen[:20]
    assert [row["id"] for row in rows(client, f"/webhooks/{hook.id}?tab=events&before=1-2")] == seen[:20]


def _newest_first_key(event_id: str) -> tuple:
    event = db.session.get(Event, event_id)
    return event.created_at, event.id


def test_an_attempt_shows_at_most_20_events_and_links_to_the_rest(app, client, auth, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/many"))
    token = api_token(vendor.account)
    made = [post(client, token, hook, id=f"m-{n}") for n in range(26)]
    run_worker(app)
    handler.wait_for("/many")
    [attempt] = attempts(hook.id)
    auth.login()
    text = page(client, f"/webhooks/{hook.id}/attempts/{attempt.id}").split('id="carried"')[1]
    assert len(CARRIED.findall(text)) == 20 and set(CARRIED.findall(text)) <= set(made)
    more = re.search(r'and 6 more: <a href="([^"]+)">see them on the Events tab</a>', text)
    assert more, text
    linked = rows(client, more.group(1).replace("&amp;", "&"))
    assert len(linked) == 20 and all(row["attempt"] == str(attempt.id) for row in linked)


def test_no_events_tab_for_validation_webhooks_and_no_other_account_s(client, auth, vendor, other_vendor):
    validator = make_webhook(vendor, type_key="fulfillment_request.validator")
    auth.login()
    text = page(client, f"/webhooks/{validator.id}?tab=events")
    assert "?tab=events" not in text and 'id="events"' not in text  # the Statistics tab instead
    theirs = make_webhook(other_vendor)
    page(client, f"/webhooks/{theirs.id}?tab=events", status=404)
    mine = make_webhook(vendor)
    assert "No events yet." in page(client, f"/webhooks/{mine.id}?tab=events")


STATS_EVENTS = re.compile(r"<dt>Events</dt><dd>(?P<total>\d+)</dd>(?:\s*<dd class=\"stat-parts\">"
                          r"<a href=\"[^\"]+\">(?P<posted>\d+) posted</a> ·\s*<a href=\"(?P<presses_url>[^\"]+)\">"
                          r"(?P<presses>\d+) Trigger Now</a></dd>)?")  # fmt: skip


def test_the_statistics_say_what_events_count_and_the_lists_add_up(client, auth, vendor):
    """Trigger Now counts an event but stores none: the Statistics tab splits Events into the
    posted ones (the Events tab's rows) and the presses (the Activity page's rows)."""
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    auth.login()
    posted = [post(client, token, hook, id=f"sum-{n}") for n in range(2)]
    only_posted = STATS_EVENTS.search(page(client, f"/webhooks/{hook.id}"))
    assert only_posted and (only_posted["total"], only_posted["posted"]) == ("2", None)  # nothing to explain yet
    for _ in range(3):
        assert client.post(f"/webhooks/{hook.id}/trigger").status_code == 302
    posted.append(post(client, token, hook, id="sum-late"))

    stats = STATS_EVENTS.search(page(client, f"/webhooks/{hook.id}"))
    assert stats, "no Events tile"
    assert (stats["total"], stats["posted"], stats["presses"]) == ("6", "3", "3")
    listed = [row["id"] for row in rows(client, f"/webhooks/{hook.id}?tab=events")]
    assert sorted(listed) == sorted(posted) and len(listed) == int(stats["posted"])
    presses = page(client, stats["presses_url"].replace("&amp;", "&"))
    assert presses.count('<td data-label="What" class="mono">webhook.triggered</td>') == int(stats["presses"])
    events_tab = page(client, f"/webhooks/{hook.id}?tab=events")
    assert "The Statistics tab's Events (6) counts 3 posted, listed here while kept, and 3 Trigger Now" in events_tab
    assert "Events are kept 30 days." in events_tab
    live = client.get(f"/webhooks/{hook.id}/live?tab=statistics").get_data(as_text=True)
    assert "3 posted" in live and "3 Trigger Now" in live  # the live tiles say it too
    answer = client.get(f"/public/v1/notifications/webhooks/{hook.id}", headers={"Authorization": f"ApiKey {token}"})
    assert {name: answer.get_json()["stats"][name] for name in ("events", "trigger_now_events")} == {
        "events": 6, "trigger_now_events": 3}  # fmt: skip
    in_api = client.get(f"/public/v1/events?webhook.id={hook.id}", headers={"Authorization": f"ApiKey {token}"})
    assert len(in_api.get_json()) == 3
