"""Recording a batch of successes: the attempt log, the statistics and the leases, in one commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.conftest import make_webhook
from webhookapp.core.times import utcnow
from webhookapp.engine import delivery, outcomes, triggers
from webhookapp.engine.delivery import recording
from webhookapp.engine.outcomes import postgresql as outcomes_postgresql
from webhookapp.engine.types import AttemptResult, Claim, Finished
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


def claimed(vendor, count: int) -> list[Claim]:
    hooks = [
        make_webhook(vendor, label=f"Hook {n}", external_url=f"https://handler.example.com/{n}") for n in range(count)
    ]
    for hook in hooks:
        triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    return triggers.claim_due(count)


def success(body: str = 'He said "ok", then left\\n') -> AttemptResult:
    return AttemptResult(
        started_at=utcnow() - timedelta(seconds=1),
        duration_ms=12.345,
        success=True,
        status=200,
        headers={"Content-Type": "text/plain", "X-Quote": 'a "b" {c}'},
        body=body,
    )


def test_a_batch_of_successes_is_logged_counted_and_its_leases_released(app, vendor):
    claims = claimed(vendor, 3)
    items = [Finished(claim, delivery.build_call(claim), success()) for claim in claims]
    outcomes.complete_successes(items)
    db.session.remove()
    for claim, call, result in items:
        webhook = db.session.get(Webhook, claim.webhook.id)
        assert (webhook.triggers_count, webhook.success_count, webhook.failures_since_last_success) == (1, 1, 0)
        assert webhook.lease_id is None and webhook.lease_expires_at is None and webhook.next_trigger_at is None
        assert webhook.last_success_at == result.started_at
        attempt = db.session.get(Attempt, webhook.last_success_info["attempt_id"])
        assert webhook.last_success_info == {
            "status": 200, "duration_ms": 12.3, "excerpt": result.body, "error": None, "attempt_id": attempt.id,
        }  # fmt: skip
        assert (attempt.webhook_id, attempt.number, attempt.kind, attempt.success) == (webhook.id, 1, "trigger", True)
        assert attempt.request_headers == call.logged_headers
        assert attempt.request_body == call.body.decode()
        assert attempt.response_headers == result.headers
        assert attempt.response_body == 'He said "ok", then left\\n'
        assert attempt.started_at == result.started_at


def test_a_webhook_deleted_while_its_attempt_was_in_flight_is_skipped(app, vendor):
    claims = claimed(vendor, 3)
    items = [Finished(claim, delivery.build_call(claim), success()) for claim in claims]
    db.session.delete(db.session.get(Webhook, claims[1].webhook.id))
    db.session.commit()
    outcomes.complete_successes(items)
    db.session.remove()
    assert sorted(db.session.scalars(db.select(Attempt.webhook_id))) == sorted(
        [claims[0].webhook.id, claims[2].webhook.id]
    )
    assert [hook.success_count for hook in db.session.scalars(db.select(Webhook))] == [1, 1]


def test_a_lease_handed_on_meanwhile_is_not_released_by_a_late_success(app, vendor):
    [claim] = claimed(vendor, 1)
    item = Finished(claim, delivery.build_call(claim), success())
    db.session.execute(db.update(Webhook).values(lease_id="someone-else"))  # the sweeper handed it on
    db.session.commit()
    outcomes.complete_successes([item])
    db.session.remove()
    webhook = db.session.get(Webhook, claim.webhook.id)
    assert webhook.lease_id == "someone-else"
    assert webhook.success_count == 1  # the attempt happened: it is counted all the same


def test_an_attempt_row_fills_every_column_of_the_attempts_table(app, vendor):
    """The PostgreSQL batch statement takes its arrays from the table and its values from the row."""
    [claim] = claimed(vendor, 1)
    row = outcomes.attempt_row(claim.webhook.id, 1, delivery.build_call(claim), success(), "trigger")
    assert set(row) == set(outcomes_postgresql.ATTEMPT_COLUMNS)


def test_two_successes_of_one_webhook_recorded_together_are_each_counted(app, vendor):
    """A success kept while the database was away, and one of the same trigger sent again after
    its claim was lost (a failover), reach the recorder together: both are stored and counted."""
    [lost] = claimed(vendor, 1)
    webhook_id = lost.webhook.id
    db.session.execute(update(Webhook).where(Webhook.id == webhook_id).values(
        lease_id=None, lease_expires_at=None, next_trigger_at=utcnow()))  # fmt: skip
    db.session.commit()  # the claim is gone, the trigger due again
    [again] = triggers.claim_due(1)
    items = [Finished(claim, delivery.build_call(claim), success()) for claim in (lost, again)]
    assert recording.record(items) == []
    db.session.remove()
    webhook = db.session.get(Webhook, webhook_id)
    stored = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == webhook_id)).all()
    assert len(stored) == 2 and all(attempt.success for attempt in stored)
    assert (webhook.triggers_count, webhook.success_count, webhook.attempts_kept) == (2, 2, 2)
    assert webhook.lease_id is None and webhook.next_trigger_at is None  # the second claim's success released it
