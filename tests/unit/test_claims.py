"""The claim (docs/architecture.md, "Trigger state"): a trigger's message is named from what was
committed before its claim, so a claim lost with its commit names the same message again; each
end of a trigger names the next one anew; and on PostgreSQL the claim runs on the raw driver
connection with a commit that does not wait for the disk, and returns what the portable claim
returns."""

from __future__ import annotations

import functools
import socket
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, update

from tests.conftest import make_webhook
from tests.worker.test_dropped_connections import drop_connections
from webhookapp.core.times import utcnow
from webhookapp.engine import reconnect, triggers
from webhookapp.engine.triggers import claims
from webhookapp.engine.types import AttemptResult, Claim, Success
from webhookapp.infra.extensions import GENERIC_PLANS, db
from webhookapp.models import Webhook

BEFORE_CLAIM = ("next_trigger_at", "trigger_attempts", "lease_id", "lease_expires_at", "lease_attempt",
                "trigger_message_id", "trigger_serial")  # fmt: skip


def fresh(hook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, hook_id)


def due(hook_id: str) -> None:
    triggers.make_due_now(fresh(hook_id), count_event=True)
    db.session.commit()


def claim(hook_id: str) -> Claim:
    [claimed] = triggers.claim_due(10, [hook_id])
    return claimed


def result(success: bool, status: int = 200) -> AttemptResult:
    return AttemptResult(started_at=utcnow(), duration_ms=5.0, success=success, status=status)


def test_a_claim_lost_with_its_commit_names_the_same_message_again(app, vendor):
    hook = make_webhook(vendor)
    due(hook.id)
    before = {name: getattr(fresh(hook.id), name) for name in BEFORE_CLAIM}
    first = claim(hook.id)
    assert first.message_id == f"msg_{hook.id}_0"
    # The database loses the claim (a crash before its commit reached the disk): the row is as before.
    db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(before))
    db.session.commit()
    assert claim(hook.id).message_id == first.message_id


def test_a_retry_keeps_the_name_and_a_success_names_the_next_trigger_anew(app, vendor):
    app.config["WEBHOOK_RETRY_BASE"] = 0.0
    hook = make_webhook(vendor)
    due(hook.id)
    first = claim(hook.id)
    triggers.finish(first, result(False, 500))
    db.session.commit()
    db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(next_trigger_at=utcnow()))
    db.session.commit()
    retry = claim(hook.id)
    assert (retry.attempt, retry.message_id) == (2, first.message_id)
    triggers.succeed([Success(hook.id, retry.lease_id, utcnow(), {"status": 200})])
    db.session.commit()
    assert (fresh(hook.id).trigger_message_id, fresh(hook.id).trigger_serial) == (None, 1)
    due(hook.id)
    assert claim(hook.id).message_id == f"msg_{hook.id}_1"


def give_up(app, hook_id: str, claimed: Claim) -> None:
    app.config["WEBHOOK_MAX_ATTEMPTS"] = claimed.attempt
    triggers.finish(claimed, result(False, 500))


def gone(app, hook_id: str, claimed: Claim) -> None:
    triggers.finish(claimed, result(False, triggers.GONE))


def disable(app, hook_id: str, claimed: Claim) -> None:
    triggers.finish(claimed, result(False, 500))  # a retry is pending, and is dropped with the webhook
    triggers.set_enabled(fresh(hook_id), False)


ENDS = {"given up": give_up, "410 Gone": gone, "disabled": disable}


@pytest.mark.parametrize("end", ENDS)
def test_every_end_of_a_trigger_names_the_next_one_anew(app, vendor, end):
    hook = make_webhook(vendor)
    due(hook.id)
    first = claim(hook.id)
    ENDS[end](app, hook.id, first)
    db.session.commit()
    ended = fresh(hook.id)
    assert (ended.trigger_message_id, ended.trigger_serial) == (None, 1)
    triggers.set_enabled(ended, True)
    db.session.commit()
    due(hook.id)
    again = claim(hook.id)
    assert again.message_id == f"msg_{hook.id}_1" != first.message_id


def test_a_late_outcome_of_a_lease_handed_on_ends_nothing(app, vendor):
    """The sweeper handed the trigger on: the old claim's success counts, but the trigger (and its
    name) belong to the lease that holds it now."""
    hook = make_webhook(vendor)
    due(hook.id)
    first = claim(hook.id)
    db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(lease_id="another"))
    db.session.commit()
    triggers.succeed([Success(hook.id, first.lease_id, utcnow(), {"status": 200})])
    db.session.commit()
    stored = fresh(hook.id)
    assert (stored.success_count, stored.trigger_message_id, stored.trigger_serial) == (1, first.message_id, 0)


# -- PostgreSQL: the raw claim -----------------------------------------------------------------


@pytest.mark.postgresql
def test_the_claims_commit_does_not_wait_for_the_disk_and_only_its_own(app, vendor, postgresql):
    """``synchronous_commit`` is off for the claim's transaction alone: the connection goes back to
    the pool as it was, for the outcomes' commits, which must wait."""
    hook = make_webhook(vendor)
    due(hook.id)
    sql, constants = claims._claim_sql(db.engine)
    now = utcnow().replace(tzinfo=None)
    expires = now + timedelta(seconds=60)
    values = {**constants, "now": now, "limit": 10, "lease_id": "lease-x", "lease_expires_at": expires}
    with psycopg.connect(postgresql) as connection:
        with connection.transaction():
            assert len(connection.execute(sql, values).fetchall()) == 1
            assert connection.execute("SHOW synchronous_commit").fetchone() == ("off",)
        assert connection.execute("SHOW synchronous_commit").fetchone() == ("on",)
    assert fresh(hook.id).lease_id == "lease-x"


def comparable(claimed: Claim) -> dict[str, Any]:
    values = asdict(claimed)
    webhook_id = values["webhook"].pop("id")
    values["webhook"].pop("jwt_secret_encrypted")  # each webhook has a secret of its own
    values["message_id"] = values["message_id"].replace(webhook_id, "<id>")
    for name in ("lease_id", "claimed_at"):
        values.pop(name)
    return values


@pytest.mark.postgresql
def test_the_raw_claim_returns_what_the_portable_claim_returns(app, vendor, postgresql):
    settings = {"headers": {"X-Team": "blue"}, "data": {"region": "eu"}}
    last = {"last_success_at": utcnow() - timedelta(hours=1), "last_failure_at": utcnow() - timedelta(minutes=3),
            "trigger_attempts": 2, "last_event_api_url": "https://api.example.com/v1", "trigger_serial": 4}  # fmt: skip
    portable, raw = (make_webhook(vendor, label="twin", **settings) for _ in range(2))
    for hook in (portable, raw):
        db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(last))
        due(hook.id)
    from_portable = claim(portable.id)  # by ids: the portable statement, through SQLAlchemy
    [from_raw] = triggers.claim_due(10)  # the only one due now: the raw statement
    assert from_raw.webhook.id == raw.id
    assert from_raw.webhook.last_success_at.tzinfo is not None
    assert comparable(from_raw) == comparable(from_portable)
    assert from_raw.message_id == f"msg_{raw.id}_4" and from_raw.attempt == 3


@pytest.mark.postgresql
def test_the_raw_claim_survives_dropped_connections(app, vendor, postgresql):
    hooks = [make_webhook(vendor) for _ in range(3)]
    claimed = []
    for hook in hooks:
        due(hook.id)
        assert drop_connections(postgresql) >= 1
        claimed += triggers.claim_due(10)  # its pool's connection died: it runs again on a fresh one
        db.engine.dispose()  # the test's own session's connection died too
    assert sorted(item.webhook.id for item in claimed) == sorted(hook.id for hook in hooks)


def test_a_webhook_made_disabled_starts_at_serial_zero(app, vendor):
    """Creation disables a new webhook through the same transition; it has no trigger to end."""
    hook = make_webhook(vendor, active=False)
    stored = fresh(hook.id)
    assert (stored.active, stored.trigger_serial, stored.trigger_message_id) == (False, 0, None)


@pytest.mark.postgresql
def test_a_claim_while_the_database_is_unreachable_carries_on_without_it(app, vendor, postgresql, monkeypatch):
    """The delivery loop's claim (through :func:`.reconnect.or_else`) gets nothing, not an error
    that would end the job, when no connection can be made or every one dies."""
    monkeypatch.setattr(reconnect, "RECONNECT_PAUSE", 0.01)
    hook = make_webhook(vendor)
    due(hook.id)
    with socket.socket() as closed:  # a port nothing listens on: bound, never listening
        closed.bind(("127.0.0.1", 0))
        nowhere = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed.getsockname()[1]}/test")
        monkeypatch.setitem(app.extensions, GENERIC_PLANS, nowhere)
        assert reconnect.or_else(functools.partial(triggers.claim_due, 10), []) == []
    nowhere.dispose()
    monkeypatch.undo()
    assert [item.webhook.id for item in triggers.claim_due(10)] == [hook.id]  # nothing was lost meanwhile
