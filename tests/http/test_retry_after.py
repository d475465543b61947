"""What the handler's answer says about retrying (docs/handlers.md, "What your answer says about
retrying"), with real handlers on 127.0.0.1: a 429 or 503 with ``Retry-After`` sets the next
attempt's time (at least a second, at most the schedule's cap; garbage is ignored), and a
410 Gone disables the webhook at once, says why, mails the account's users and is audited."""

from __future__ import annotations

import html
import itertools
import re
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.servers import free_port
from tests.worker.test_alerts import Inbox, body
from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, triggers
from webhookapp.engine.maintenance import alerts
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, AuditEntry, Webhook

API = "/public/v1/notifications/webhooks"


@pytest.fixture
def ladder(app):
    """A schedule of fractions of a second, capped at 30 s: what the handler asks shows apart."""
    app.config.update(
        WEBHOOK_RETRY_BASE=0.2, WEBHOOK_RETRY_FACTOR=2, WEBHOOK_RETRY_MAX_INTERVAL=30, WEBHOOK_MAX_ATTEMPTS=4
    )


@pytest.fixture
def inbox(app):
    received = Inbox()
    controller = Controller(received, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, WEBHOOK_SITE_URL="https://hooks.example/")
    yield received
    controller.stop()


def fresh(hook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, hook_id)


def attempts_of(hook_id: str) -> list[Attempt]:
    return list(db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def text_of(page: bytes) -> str:
    """A page's words, without markup, each run of white space one space."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.decode())).split())


def test_retry_after_sets_the_next_attempt_within_the_floor_and_the_cap(app, client, auth, vendor, handler, ladder):
    asked_date = (utcnow() + timedelta(seconds=25)).replace(microsecond=0)
    answers = {
        "/seconds": (503, "20"),
        "/date": (429, format_datetime(asked_date, usegmt=True)),
        "/capped": (503, "86400"),
        "/garbage": (503, "soon"),
        "/floor": (429, "0"),
    }
    hooks = {
        path: make_webhook(
            vendor, label=path, external_url=handler.behave(path, status=status, headers={"Retry-After": value})
        )
        for path, (status, value) in answers.items()
    }
    token = api_token(vendor.account)
    post_event(client, token, object_class="fulfillment_request", product_id=vendor.products[0].id)
    run_worker(app)  # the retries due within seconds (the floor's, the garbage's) are sent by this job

    for path in ("/seconds", "/date", "/capped"):
        stored = fresh(hooks[path].id)
        [first] = attempts_of(stored.id)
        assert stored.trigger_attempts == 1 and stored.retry_asked and stored.retry_asked_at == stored.next_trigger_at
        waited = (stored.next_trigger_at - first.started_at).total_seconds()
        if path == "/seconds":  # the schedule says 0.2 s; the handler said 20
            assert 20 <= waited < 20 + 15, waited
        elif path == "/capped":  # a day asked, the schedule's cap of 30 s given
            assert 30 <= waited < 30 + 15, waited
        else:  # the very second the handler named
            assert abs((stored.next_trigger_at - asked_date).total_seconds()) < 0.01, stored.next_trigger_at

    # Garbage: the schedule, 0.2, 0.4 and 0.8 s apart, then Out of order, the header ignored.
    garbage = handler.wait_for("/garbage", 4)
    assert fresh(hooks["/garbage"].id).out_of_order and fresh(hooks["/garbage"].id).retry_asked_at is None
    # "0": at least a second apart, where the schedule would have said 0.2 s.
    floor = handler.wait_for("/floor", 4)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(floor)]
    assert all(gap >= 0.99 for gap in gaps), gaps
    rungs = [later.at - earlier.at for earlier, later in itertools.pairwise(garbage)]
    assert all(gap >= 0.2 * 2**n - 0.01 for n, gap in enumerate(rungs)), rungs
    assert fresh(hooks["/floor"].id).out_of_order

    # The details page, the list and the API say whose time it is.
    auth.login()
    seconds = hooks["/seconds"]
    page = text_of(client.get(f"/webhooks/{seconds.id}").data)
    assert re.search(r"Failing: attempt 2 of 4 at [^()]{4,40} \(asked by the handler\)", page), page
    assert "(asked by the handler)" in text_of(client.get("/webhooks").data)
    answer = client.get(f"{API}/{seconds.id}", headers={"Authorization": f"ApiKey {token}"}).get_json()
    assert answer["status"] == "enabled"
    assert answer["retry"] == {
        "attempt": 2, "max_attempts": 4, "at": answer["earliest_possible_trigger"], "sending": False,
        "asked_by_handler": True,
    }  # fmt: skip
    out_of_order = client.get(f"{API}/{hooks['/garbage'].id}", headers={"Authorization": f"ApiKey {token}"})
    assert out_of_order.get_json()["retry"] is None

    # Retry now moves the trigger: its time is no longer the handler's.
    client.post(f"/webhooks/{seconds.id}/retry")
    assert not fresh(seconds.id).retry_asked
    assert "(asked by the handler)" not in text_of(client.get(f"/webhooks/{seconds.id}").data)


def test_a_retry_after_is_honoured_when_the_retry_is_sent(app, client, vendor, handler, ladder):
    """The asked time holds when the retry goes out: not at the schedule's 0.2 s, and not before."""
    url = handler.behave("/later", status=503, headers={"Retry-After": "3"})
    hook = make_webhook(vendor, external_url=url)
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)  # 3 s is beyond what a job waits for: the retry is left to its due time
    [first] = handler.requests_to("/later")
    due = fresh(hook.id).next_trigger_at
    assert fresh(hook.id).retry_asked and len(handler.requests_to("/later")) == 1
    handler.behave("/later", status=200)
    while utcnow() < due:  # wait on state: the trigger falls due
        assert triggers.claim_due(10) == []  # nothing may be sent before the handler's time
        time.sleep(0.1)
    dispatch.wake([hook.id])
    run_worker(app)
    _first, second = handler.wait_for("/later", 2)
    assert second.at - first.at >= 3 - 0.01
    stored = fresh(hook.id)
    assert (stored.success_count, stored.failure_count, stored.retry_asked) == (1, 1, False)


def test_410_gone_disables_at_once_says_why_mails_and_audits(app, client, auth, vendor, handler, inbox, ladder):
    url = handler.behave("/gone", status=410, body=b"no such endpoint")
    hook = make_webhook(vendor, label="Orders to ERP", external_url=url)
    token = api_token(vendor.account)
    post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)

    # Disabled at the first 410, not after the schedule's four attempts.
    assert len(handler.requests_to("/gone")) == 1
    stored = fresh(hook.id)
    assert (stored.active, stored.status, stored.next_trigger_at, stored.lease_id) == (False, "Disabled", None, None)
    assert stored.disabled_reason == "the handler answered 410 Gone"
    [attempt] = attempts_of(hook.id)
    assert (attempt.response_status, attempt.success) == (410, False)
    assert attempt.error == "The handler answered 410 Gone: the webhook is disabled."

    # Nothing more is sent, and events no longer count.
    post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    assert len(handler.requests_to("/gone")) == 1 and fresh(hook.id).events_count == 1

    # The pages and the API say why.
    auth.login()
    page = text_of(client.get(f"/webhooks/{hook.id}").data)
    assert "Status Disabled: the handler answered 410 Gone" in page
    assert "Disabled: the handler answered 410 Gone at" in page  # the banner, with its time and attempt
    assert f"/webhooks/{hook.id}/attempts/{attempt.id}" in client.get(f"/webhooks/{hook.id}").data.decode()
    assert "The handler answered 410 Gone: the webhook is disabled." in text_of(
        client.get(f"/webhooks/{hook.id}/attempts/{attempt.id}").data
    )
    answer = client.get(f"{API}/{hook.id}", headers={"Authorization": f"ApiKey {token}"}).get_json()
    assert (answer["active"], answer["status"], answer["disabled_reason"]) == (
        False, "disabled", "the handler answered 410 Gone"
    )  # fmt: skip
    assert answer["last_failure"]["error"] == "The handler answered 410 Gone: the webhook is disabled."

    # The audit trail: the system disabled it, and why.
    [entry] = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "webhook.disabled")).all()
    assert (entry.actor_kind, entry.account_id, entry.object_id) == ("system", vendor.account.id, hook.id)
    assert entry.changes == {
        "active": {"before": True, "after": False},
        "reason": {"after": "the handler answered 410 Gone"},
    }
    assert "the handler answered 410 Gone" in text_of(client.get(f"/activity?object={hook.id}").data)

    # One mail, as for Out of order.
    assert alerts.send_alerts() == 1
    [(recipients, message)] = inbox.wait_for(1)
    assert recipients == ["alice@acme.test"]
    assert message["Subject"] == f"Webhook disabled: Orders to ERP ({hook.id})"
    text = body(message)
    assert "is disabled: the handler answered 410 Gone" in text
    assert f"https://hooks.example/webhooks/{hook.id}/attempts/{attempt.id}" in text
    assert alerts.send_alerts() == 0  # told once

    # Enabled again by a person: the reason goes, and the next success is mailed as a recovery.
    handler.behave("/gone", status=200)
    client.post(f"/webhooks/{hook.id}/enable")
    stored = fresh(hook.id)
    assert (stored.active, stored.out_of_order, stored.disabled_reason, stored.status) == (True, False, None, "Enabled")
    assert "410 Gone" not in text_of(client.get(f"/webhooks/{hook.id}").data).split("Last failure")[0]
    post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    handler.wait_for("/gone", 2)
    assert alerts.send_alerts() == 1
    assert inbox.wait_for(2)[1][1]["Subject"] == f"Webhook recovered: Orders to ERP ({hook.id})"


def test_redirects_stay_failures_retried_by_the_schedule(app, client, vendor, handler, ladder):
    """A 3xx is a failure as ever, whatever Retry-After it carries; a 410 after a redirect is never seen."""
    url = handler.behave("/moved", status=301, headers={"Location": "/gone-elsewhere", "Retry-After": "20"})
    handler.behave("/gone-elsewhere", status=410)
    hook = make_webhook(vendor, external_url=url)
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    handler.wait_for("/moved", 4)
    stored = fresh(hook.id)
    assert stored.active and stored.out_of_order and stored.retry_asked_at is None
    assert handler.requests_to("/gone-elsewhere") == []
    assert attempts_of(hook.id)[0].error.startswith("Redirects are not followed (HTTP 301")
