"""Health at a glance: one status vocabulary (Enabled, Failing, Out of order, Disabled), the
Out-of-order banner, Retry now, and the list's success rate over 24 hours."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


def fresh(hook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, hook_id)


def page(client, url: str) -> str:
    db.session.expire_all()
    response = client.get(url)
    assert response.status_code == 200, url
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def numbers(hook_id: str) -> list[int]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Attempt.number).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def send_event(client, vendor, hook: Webhook) -> None:
    status, _ = post_event(client, api_token(vendor.account), object_class="fulfillment_request",
                           product_id=hook.product_id)  # fmt: skip
    assert status == 202


def test_a_failing_webhook_says_so_and_retry_now_sends_at_once_without_an_event(app, client, auth, vendor, handler):
    app.config.update(WEBHOOK_RETRY_BASE=3600, WEBHOOK_MAX_ATTEMPTS=3)  # the retry is an hour away
    hook = make_webhook(vendor, external_url=handler.behave("/flaky", status=503))
    healthy = make_webhook(vendor, label="Healthy", product_id=vendor.products[1].id)  # the event is not its
    send_event(client, vendor, hook)
    run_worker(app)
    handler.wait_for("/flaky", 1)
    stored = fresh(hook.id)
    assert (stored.status, stored.next_attempt, stored.events_count) == ("Failing", 2, 1)
    retry = f"attempt 2 of 3 at {stored.next_trigger_at:%Y-%m-%d %H:%M} UTC"

    auth.login()
    details = page(client, f"/webhooks/{hook.id}")
    assert '<span class="badge badge-warn">Failing</span>' in details and f"Failing: {retry}" in details
    assert "Retry now" in details and 'role="alert"' not in details
    listed = page(client, "/webhooks")
    assert retry in listed
    assert hook.label in page(client, "/webhooks?status=failing")
    assert f"/webhooks/{healthy.id}" not in page(client, "/webhooks?status=failing")
    assert f"/webhooks/{hook.id}" not in page(client, "/webhooks?status=enabled")
    assert f"/webhooks/{healthy.id}" in page(client, "/webhooks?status=enabled")

    handler.behave("/flaky", status=200)
    response = client.post(f"/webhooks/{hook.id}/retry")
    assert response.status_code == 302 and response.headers["Location"] == f"/webhooks/{hook.id}"
    run_worker(app)
    handler.wait_for("/flaky", 2)
    stored = fresh(hook.id)
    assert (stored.status, stored.events_count, stored.success_count) == ("Enabled", 1, 1)
    assert numbers(hook.id) == [1, 2]  # the retry kept its number


def test_retry_now_on_a_healthy_or_disabled_webhook_is_refused(client, auth, vendor, other_vendor):
    hook = make_webhook(vendor)
    disabled = make_webhook(vendor, active=False)
    theirs = make_webhook(other_vendor)
    auth.login()
    for target in (hook, disabled):
        response = client.post(f"/webhooks/{target.id}/retry", follow_redirects=True)
        assert "Only a Failing or Out-of-order webhook has a retry to send." in html.unescape(response.get_data(True))
        assert fresh(target.id).next_trigger_at is None
    assert client.post(f"/webhooks/{theirs.id}/retry").status_code == 404


def test_out_of_order_says_why_and_what_to_do(app, client, auth, vendor, handler):
    app.config.update(WEBHOOK_RETRY_BASE=0.2, WEBHOOK_RETRY_FACTOR=1, WEBHOOK_MAX_ATTEMPTS=2)
    hook = make_webhook(vendor, external_url=handler.behave("/down", status=502, body=b"bad gateway"))
    send_event(client, vendor, hook)
    run_worker(app)
    handler.wait_for("/down", 2)
    stored = fresh(hook.id)
    assert stored.status == "Out of order"
    failed = stored.last_failure_info["attempt_id"]

    auth.login()
    details = page(client, f"/webhooks/{hook.id}")
    banner = details.split('role="alert"', 1)[1].split("</div> </div>", 1)[0]
    assert "Out of order:" in banner and "the last 2 attempts failed" in banner and "HTTP 502" in banner
    assert f'href="/webhooks/{hook.id}/attempts/{failed}"' in banner
    assert ">Retry now</button>" in banner and ">Enable</button>" in banner

    handler.behave("/down", status=200)
    client.post(f"/webhooks/{hook.id}/retry")
    run_worker(app)
    handler.wait_for("/down", 3)
    stored = fresh(hook.id)
    assert (stored.status, stored.events_count) == ("Enabled", 1)
    assert numbers(hook.id) == [1, 2, 1]  # a new round of attempts
    assert 'role="alert"' not in page(client, f"/webhooks/{hook.id}")


def test_the_api_keeps_the_platforms_statuses_for_a_failing_webhook(app, client, vendor, handler):
    app.config.update(WEBHOOK_RETRY_BASE=3600)
    hook = make_webhook(vendor, external_url=handler.behave("/api-flaky", status=500))
    send_event(client, vendor, hook)
    run_worker(app)
    handler.wait_for("/api-flaky", 1)
    assert fresh(hook.id).status == "Failing"
    body = client.get(f"/public/v1/notifications/webhooks/{hook.id}",
                      headers={"Authorization": f"ApiKey {api_token(vendor.account)}"}).get_json()  # fmt: skip
    assert body["status"] == "enabled"  # Failing is a state of an enabled webhook


def test_the_list_shows_each_webhooks_success_rate_over_24_hours(client, auth, vendor):
    hook, quiet = make_webhook(vendor, label="Busy"), make_webhook(vendor, label="Quiet")
    now = utcnow()
    outcomes = [(True, 1), (True, 2), (True, 3), (False, 4), (False, 30), (False, 40)]  # hours ago
    db.session.add_all(
        Attempt(webhook_id=hook.id, started_at=now - timedelta(hours=ago), success=success, request_method="POST",
                request_url="https://h.test/", request_headers={})
        for success, ago in outcomes
    )  # fmt: skip
    db.session.commit()
    auth.login()
    rows = page(client, "/webhooks").split("<tr>")
    busy = next(row for row in rows if "Busy" in row)
    quiet_row = next(row for row in rows if "Quiet" in row)
    cell = '<td data-label="Success, 24 h" data-live="health:{}">{}</td>'  # data-live: static/js/live.js
    assert cell.format(hook.id, '75 %<div class="muted small">of 4</div>') in busy
    assert cell.format(quiet.id, '<span class="muted">—</span>') in quiet_row
    assert quiet.id in quiet_row


def test_a_retry_less_than_a_minute_away_shows_its_seconds(app, client, auth, vendor):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 3
    soon, later = make_webhook(vendor, label="Soon"), make_webhook(vendor, label="Later")
    now = utcnow()
    for hook, due in ((soon, now + timedelta(seconds=40)), (later, now + timedelta(minutes=5))):
        hook.trigger_attempts, hook.next_trigger_at = 1, due  # one failure, its retry due then
    db.session.commit()
    at_40 = f"{now + timedelta(seconds=40):%Y-%m-%d %H:%M:%S} UTC"
    auth.login()
    details = page(client, f"/webhooks/{soon.id}")
    assert f"Failing: attempt 2 of 3 at {at_40}" in details
    assert f"<dt>Next trigger</dt><dd>{at_40}</dd>" in details
    assert f"attempt 2 of 3 at {at_40}" in page(client, "/webhooks")
    regions = client.get(f"/webhooks/{soon.id}/live").get_json()["regions"]
    assert at_40 in regions["retry"] or at_40 in regions["status"], regions
    # Five minutes away: to the minute, as every other time.
    at_5 = f"{now + timedelta(minutes=5):%Y-%m-%d %H:%M} UTC"
    assert f"Failing: attempt 2 of 3 at {at_5}" in page(client, f"/webhooks/{later.id}")
