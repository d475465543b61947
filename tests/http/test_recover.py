"""Recover a time range (docs/architecture.md, "Recover"): a webhook's failed triggers of a range
sent once more, as Redeliver sends one, oldest first and at most the configured rate, by the
workers; through the API and the Deliveries tab. Against a real handler, database and Redis."""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.openapi_conformance import assert_conforms
from tests.pages import REFUSED, csrf_token, login
from webhookapp.api.openapi_recovery_paths import RECOVERY_PATH, WEBHOOK_PATH
from webhookapp.core.times import utcnow
from webhookapp.engine.recovery import selection
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, AuditEntry, Recovery, Webhook
from webhookapp.services import webhook_changes as service

HOOKS = "/public/v1/notifications/webhooks"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=utcnow().tzinfo)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def seed(hook_id: str, history: list[tuple[float, int, bool]], **extra: Any) -> list[int]:
    """Recorded trigger attempts of the past: (minute, number within its trigger, success)."""
    rows = [
        {"webhook_id": hook_id, "kind": "trigger", "number": number, "started_at": at(minute), "duration_ms": 1.0,
         "success": success, "request_method": "POST", "request_url": "https://old.example/hook",
         "request_headers": {}, "response_status": 200 if success else 500, "response_truncated": False, **extra}
        for minute, number, success in history
    ]  # fmt: skip
    ids = list(db.session.scalars(insert(Attempt).returning(Attempt.id), rows))
    db.session.commit()
    return ids


# (minute, number, success): which failures ended their trigger
HISTORY = [
    (0, 1, False),  # before the range
    (10, 1, False), (11, 2, False), (12, 3, True),  # retried until a success: nothing to send
    (20, 1, False),  # its trigger's last (the next attempt starts a new trigger): sent
    (30, 1, False), (31, 2, False),  # the second was the last: sent
    (40, 1, True),
    (50, 1, False),  # sent
    (70, 1, False),  # after the range
]  # fmt: skip
SENT = [4, 6, 8]  # the indexes in HISTORY of what a recovery of [5, 60) sends, oldest first


def api(client, token: str, method: str, path: str, **kwargs: Any):
    return client.open(f"{HOOKS}{path}", method=method, headers={"Authorization": f"ApiKey {token}"}, **kwargs)


def recover_body(since: float = 5, until: float | None = 60) -> dict[str, str]:
    body = {"since": at(since).isoformat()}
    if until is not None:
        body["until"] = at(until).isoformat()
    return body


def fresh_recovery(recovery_id: int) -> Recovery:
    db.session.rollback()
    return db.session.get(Recovery, recovery_id)


def fresh_hook(hook_id: str) -> Webhook:
    db.session.rollback()  # end the test's read transaction: the worker has committed since
    return db.session.get(Webhook, hook_id)


def resent(hook_id: str) -> list[Attempt]:
    db.session.rollback()
    query = select(Attempt).where(Attempt.webhook_id == hook_id, Attempt.redelivery_of.is_not(None))
    return list(db.session.scalars(query.order_by(Attempt.id)))


@pytest.fixture
def fast(app):
    app.config["WEBHOOK_RECOVER_RATE"] = 1000


def test_each_failed_trigger_of_the_range_is_sent_once_oldest_first_as_redeliver_does(
    app, client, vendor, handler, fast
):
    hook = make_webhook(vendor, external_url=handler.behave("/recover"))
    ids = seed(hook.id, HISTORY)
    token = api_token(vendor.account)
    names = ("events_count", "triggers_count", "success_count", "failure_count", "next_trigger_at", "trigger_attempts")
    stored = fresh_hook(hook.id)
    before = {name: getattr(stored, name) for name in names}

    started = api(client, token, "POST", f"/{hook.id}/recover", json=recover_body())
    assert started.status_code == 202, started.get_json()
    assert_conforms(started, f"{WEBHOOK_PATH}/recover", "post")
    body = started.get_json()
    assert body["state"] == "running" and body["total"] == len(SENT) and body["sent"] == 0

    run_worker(app)
    handler.wait_for("/recover", len(SENT))
    recovery = fresh_recovery(body["id"])
    assert (recovery.state, recovery.sent, recovery.succeeded) == ("finished", len(SENT), len(SENT))
    again = resent(hook.id)
    assert [attempt.redelivery_of for attempt in again] == [ids[index] for index in SENT]
    assert [attempt.number for attempt in again] == [HISTORY[index][1] for index in SENT]
    assert all(attempt.success and attempt.kind == "trigger" for attempt in again)
    assert len(handler.requests_to("/recover")) == len(SENT)  # each once
    stored = fresh_hook(hook.id)
    assert {name: getattr(stored, name) for name in names} == before  # no event, no statistics, no schedule

    read = api(client, token, "GET", f"/{hook.id}/recoveries/{recovery.id}")
    assert read.status_code == 200 and read.get_json()["state"] == "finished"
    assert_conforms(read, RECOVERY_PATH, "get")
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == hook.id))
    assert "webhook.recovery_started" in list(actions)


def test_until_defaults_to_now_and_a_trigger_still_being_retried_is_left_to_its_retry(
    app, client, vendor, handler, fast
):
    hook = make_webhook(vendor, external_url=handler.behave("/failing", status=500))
    token = api_token(vendor.account)
    assert post_event(client, token, object_class=hook.object_class, product_id=hook.product_id)[0] == 202
    run_worker(app)  # a real failed attempt, its retry scheduled
    assert fresh_hook(hook.id).trigger_attempts == 1
    started = api(client, token, "POST", f"/{hook.id}/recover", json={"since": at(-60).isoformat()})
    assert started.status_code == 202 and started.get_json()["total"] == 0

    service.set_enabled(hook, False)  # the pending retry is dropped: that failure was the last
    service.set_enabled(fresh_hook(hook.id), True)
    recovery = fresh_recovery(started.get_json()["id"])
    assert selection.count(fresh_hook(hook.id), recovery.since, utcnow()) == 1


def test_the_count_and_the_batched_reads_agree_across_batch_boundaries(app, vendor):
    hook = make_webhook(vendor)
    history = [(i / 10, 1 + i % 3, i % 7 == 0) for i in range(450)]  # triggers of 3 attempts, some successes
    ids = seed(hook.id, history)
    webhook = fresh_hook(hook.id)
    position, found = selection.Position(at(1), 0), []
    while True:
        batch = selection.read(hook.id, None, position, at(40), 37)
        found += [candidate.attempt_id for candidate in batch.candidates]
        if batch.exhausted:
            break
        position = batch.examined
    expected = [
        ids[i]
        for i, (minute, number, success) in enumerate(history)
        if 1 <= minute < 40 and not success and (i + 1 == len(history) or history[i + 1][1] != number + 1)
    ]
    assert found == expected and selection.count(webhook, at(1), at(40)) == len(expected)


def test_at_most_the_configured_rate(app, client, vendor, handler):
    app.config["WEBHOOK_RECOVER_RATE"] = 2
    hook = make_webhook(vendor, external_url=handler.behave("/recover"))
    seed(hook.id, [(minute, 1, False) for minute in range(10, 16)])
    started = api(client, api_token(vendor.account), "POST", f"/{hook.id}/recover", json=recover_body())
    run_worker(app)  # one slice: the next is scheduled a second later
    recovery = fresh_recovery(started.get_json()["id"])
    assert recovery.state == "running" and recovery.sent == 2 and len(handler.requests_to("/recover")) == 2
    assert recovery.next_at >= recovery.created_at + timedelta(seconds=1)


def test_a_second_recovery_while_one_runs_is_refused_and_cancel_stops_it(app, client, vendor, handler, auth):
    hook = make_webhook(vendor, external_url=handler.behave("/recover"))
    seed(hook.id, HISTORY)
    token = api_token(vendor.account)
    first = api(client, token, "POST", f"/{hook.id}/recover", json=recover_body()).get_json()

    second = api(client, token, "POST", f"/{hook.id}/recover", json=recover_body(0, 80))
    assert second.status_code == 409
    assert_conforms(second, f"{WEBHOOK_PATH}/recover", "post")
    assert "A recovery of this webhook is running" in second.get_json()["errors"][0]
    auth.login()
    page = client.post(f"/webhooks/{hook.id}/recover", data={"since": "2026-11-01T12:00"}, follow_redirects=True)
    assert "A recovery of this webhook is running" in html.unescape(page.get_data(as_text=True))

    cancelled = api(client, token, "POST", f"/{hook.id}/recoveries/{first['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    assert_conforms(cancelled, f"{RECOVERY_PATH}/cancel", "post")
    again = api(client, token, "POST", f"/{hook.id}/recoveries/{first['id']}/cancel")
    assert again.status_code == 409
    run_worker(app)  # the queued slice finds it cancelled
    assert handler.requests_to("/recover") == [] and fresh_recovery(first["id"]).sent == 0
    actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == hook.id)))
    assert actions.count("webhook.recovery_started") == 1 and actions.count("webhook.recovery_cancelled") == 1
    assert api(client, token, "POST", f"/{hook.id}/recover", json=recover_body()).status_code == 202


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "since: an ISO 8601 date and time is required."),
        ({"since": "yesterday"}, "since: 'yesterday' is not an ISO 8601 date and time."),
        ({"since": at(60).isoformat(), "until": at(5).isoformat()}, "The start of the range must be before its end"),
        ({"since": at(5).isoformat(), "extra": 1}, "Unknown field: extra."),
    ],
)
def test_bad_ranges_are_refused(client, vendor, body, message):
    hook = make_webhook(vendor)
    answer = api(client, api_token(vendor.account), "POST", f"/{hook.id}/recover", json=body)
    assert answer.status_code == 400 and answer.get_json()["errors"][0].startswith(message)
    assert db.session.scalar(select(Recovery.id)) is None


def test_a_disabled_webhook_refuses_and_one_disabled_meanwhile_stops(app, client, vendor, handler, fast):
    hook = make_webhook(vendor, external_url=handler.behave("/recover"))
    seed(hook.id, HISTORY)
    token = api_token(vendor.account)
    started = api(client, token, "POST", f"/{hook.id}/recover", json=recover_body()).get_json()
    service.set_enabled(fresh_hook(hook.id), False)
    refused = api(client, token, "POST", f"/{hook.id}/recover", json=recover_body())
    assert refused.status_code == 400
    run_worker(app)
    recovery = fresh_recovery(started["id"])
    assert (recovery.state, recovery.note, recovery.sent) == ("cancelled", "The webhook was disabled.", 0)


def test_another_accounts_webhook_and_recovery_are_404(app, client, vendor, other_vendor, handler, auth):
    mine = make_webhook(vendor, external_url=handler.behave("/recover"))
    theirs = make_webhook(other_vendor, external_url=handler.behave("/theirs"))
    token = api_token(vendor.account)
    their_recovery = api(client, api_token(other_vendor.account), "POST", f"/{theirs.id}/recover",
                         json=recover_body()).get_json()  # fmt: skip
    assert api(client, token, "POST", f"/{theirs.id}/recover", json=recover_body()).status_code == 404
    assert api(client, token, "GET", f"/{theirs.id}/recoveries/{their_recovery['id']}").status_code == 404
    assert api(client, token, "GET", f"/{mine.id}/recoveries/{their_recovery['id']}").status_code == 404
    assert api(client, token, "POST", f"/{mine.id}/recoveries/{their_recovery['id']}/cancel").status_code == 404
    auth.login()
    assert client.post(f"/webhooks/{theirs.id}/recover", data={"since": "2026-11-01T12:00"}).status_code == 404
    cancel = f"/webhooks/{mine.id}/recoveries/{their_recovery['id']}/cancel"
    assert client.post(cancel).status_code == 404
    assert fresh_recovery(their_recovery["id"]).state == "running"


def test_the_deliveries_tab_starts_shows_live_and_cancels(app, client, vendor, handler, auth, fast):
    hook = make_webhook(vendor, external_url=handler.behave("/recover"))
    seed(hook.id, HISTORY)
    auth.login()
    tab = client.get(f"/webhooks/{hook.id}?tab=deliveries").get_data(as_text=True)
    assert "Recover failed deliveries" in tab and 'name="since"' in tab
    response = client.post(f"/webhooks/{hook.id}/recover",
                           data={"since": "2026-11-01T12:05", "until": "2026-11-01T13:00"})  # fmt: skip
    assert response.status_code == 302
    page = html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "Recovering 3 failed deliveries in the background." in page and "0 of 3 sent" in page
    assert "Cancel recovery" in page
    live = client.get(f"/webhooks/{hook.id}/live?tab=deliveries").get_json()
    assert "0 of 3 sent" in live["regions"]["recovery"]

    run_worker(app)
    live = client.get(f"/webhooks/{hook.id}/live?tab=deliveries").get_json()
    assert "Recovered" in live["regions"]["recovery"] and "3 of 3 sent" in live["regions"]["recovery"]
    assert "Cancel recovery" not in live["regions"]["recovery"]

    recovery_id = db.session.scalar(select(Recovery.id))
    client.post(f"/webhooks/{hook.id}/recover", data={"since": "2026-11-01T12:00"})
    newest = db.session.scalar(select(Recovery.id).order_by(Recovery.id.desc()))
    assert newest != recovery_id
    cancelled = client.post(f"/webhooks/{hook.id}/recoveries/{newest}/cancel", follow_redirects=True)
    assert "Recovery cancelled after 0 of" in html.unescape(cancelled.get_data(as_text=True))
    assert fresh_recovery(newest).state == "cancelled"


def test_the_forms_need_their_csrf_token(app, vendor, handler, csrf_client):
    hook = make_webhook(vendor, external_url=handler.behave("/recover"))
    login(csrf_client, vendor.email)
    refused = csrf_client.post(f"/webhooks/{hook.id}/recover", data={"since": "2026-11-01T12:00"})
    assert refused.status_code == 400 and REFUSED in refused.get_data(as_text=True)
    assert db.session.scalar(select(Recovery.id)) is None
    token = csrf_token(csrf_client.get(f"/webhooks/{hook.id}?tab=deliveries"))
    started = csrf_client.post(f"/webhooks/{hook.id}/recover", data={"since": "2026-11-01T12:00", "csrf_token": token})
    assert started.status_code == 302
    recovery_id = db.session.scalar(select(Recovery.id))
    refused = csrf_client.post(f"/webhooks/{hook.id}/recoveries/{recovery_id}/cancel")
    assert refused.status_code == 400 and fresh_recovery(recovery_id).state == "running"
