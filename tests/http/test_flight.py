"""The send window of a delivery job: slow handlers get every thread, nothing claimed is left behind."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import make_webhook
from webhookapp.engine import delivery, dispatch, runtime, timing, triggers
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


def make_due(hooks: list[Webhook]) -> None:
    for hook in hooks:
        triggers.make_due_now(hook, count_event=True)
    db.session.commit()


def counts() -> tuple[int, int, int]:
    """Successes recorded, leases held, triggers still pending."""
    db.session.rollback()
    return (
        db.session.scalar(select(func.coalesce(func.sum(Webhook.success_count), 0))),
        db.session.scalar(select(func.count()).where(Webhook.lease_id.is_not(None))),
        db.session.scalar(select(func.count()).where(Webhook.next_trigger_at.is_not(None))),
    )


def start_drain(app: Flask) -> tuple[threading.Thread, dict[str, int]]:
    """A delivery job (60 s of budget) on a thread of its own; ``attempts`` once it returns."""
    outcome: dict[str, int] = {}

    def job() -> None:
        with app.app_context():
            outcome["attempts"] = delivery.drain(runtime.of(app), budget=60)
            db.session.remove()

    worker = threading.Thread(target=job)
    worker.start()
    return worker, outcome


def test_slow_handlers_are_called_concurrently_beyond_the_fast_window(app, vendor, handler):
    answer = threading.Event()
    url = handler.behave("/slow", held_until=answer)
    hooks = [make_webhook(vendor, label=f"Slow {n}", external_url=url) for n in range(24)]
    make_due(hooks)
    assert len(hooks) > 4 * timing.FAST_WINDOW

    worker, outcome = start_drain(app)
    try:
        # Every call is in flight at once, none answered yet: one after another, only the first
        # would be; the window opens as each send turns slow.
        handler.wait_for("/slow", len(hooks), timeout=20)
    finally:
        answer.set()
        worker.join(30)
    assert outcome["attempts"] == len(hooks)
    assert counts() == (len(hooks), 0, 0)
    assert db.session.scalar(select(func.count()).select_from(Attempt)) == len(hooks)


def test_a_job_handing_over_sends_every_attempt_it_claimed_and_records_it(app, vendor, handler):
    app.config["WEBHOOK_WORKER_THREADS"] = 8  # the app's runtime builds a pool of this size at first use
    url = handler.behave("/slowish", delay=0.3)
    hooks = [make_webhook(vendor, label=f"Hook {n}", external_url=url) for n in range(12)]
    make_due(hooks)
    delivery.drain(runtime.of(app), budget=0.05)  # claims 8, starts some, hands the rest over
    handler.wait_for("/slowish", 8, timeout=10)
    deadline = time.monotonic() + 10
    while counts()[0] < 8:
        assert time.monotonic() < deadline, f"claimed attempts were not recorded: {counts()}"
        time.sleep(0.05)
    assert counts() == (8, 0, 4)  # the four never claimed are still due
    assert delivery.drain(runtime.of(app), budget=5) == 4
    assert counts() == (12, 0, 0)


@pytest.mark.slow  # waits out an idle time of 3 s
def test_a_job_out_of_work_waits_on_the_doorbell_for_the_next_event(app, vendor, handler):
    app.config["WEBHOOK_IDLE_WAIT"] = 3.0
    first = make_webhook(vendor, label="First", external_url=handler.behave("/first"))
    second = make_webhook(vendor, label="Second", external_url=handler.behave("/second"))
    make_due([first])
    outcome: dict[str, float | int] = {}

    def job() -> None:
        with app.app_context():
            started = time.monotonic()
            outcome["attempts"] = delivery.drain(runtime.of(app), budget=10)
            outcome["seconds"] = time.monotonic() - started
            db.session.remove()

    worker = threading.Thread(target=job)
    worker.start()
    handler.wait_for("/first", timeout=5)
    time.sleep(0.3)  # the job has run out of work and waits
    make_due([second])
    assert dispatch.wake([second.id])
    handler.wait_for("/second", timeout=5)
    worker.join(20)
    assert not worker.is_alive()
    # The same job made both attempts: the doorbell woke it (without, it would have gone at the
    # end of its idle wait, and the second event would still be waiting for a job).
    assert outcome["attempts"] == 2
    # Then it waited its idle time once more (a busy machine only adds), and returned.
    assert 3.0 <= outcome["seconds"] < 3 * 3.0
    assert counts() == (2, 0, 0)


def test_a_call_that_cannot_be_signed_fails_alone_and_is_recorded(app, vendor, handler):
    url = handler.behave("/fine")
    broken, fine = (make_webhook(vendor, label=f"Hook {n}", external_url=url) for n in range(2))
    broken.headers = ["not", "pairs"]  # what no form lets through: the request cannot be built
    make_due([broken, fine])
    delivery.drain(runtime.of(app), budget=5)
    db.session.rollback()
    failed = db.session.scalars(select(Attempt).where(Attempt.webhook_id == broken.id)).one()
    assert not failed.success and failed.error.startswith("Could not prepare the request:")
    assert failed.response_status is None and len(handler.requests_to("/fine")) == 1
    assert (db.session.get(Webhook, broken.id).failure_count, db.session.get(Webhook, fine.id).success_count) == (1, 1)


def leases() -> dict[str, str]:
    """The lease held on each webhook that has one."""
    db.session.rollback()
    return dict(db.session.execute(select(Webhook.id, Webhook.lease_id).where(Webhook.lease_id.is_not(None))).all())


def test_a_thread_whose_slow_send_ends_takes_a_call_claimed_ahead(app, vendor, handler):
    app.config["WEBHOOK_WORKER_THREADS"] = 4  # the app's runtime builds a pool of this size at first use
    answers = [threading.Event() for _ in range(8)]
    hooks = [
        make_webhook(vendor, label=f"Slow {n}", external_url=handler.behave(f"/slow{n}", held_until=answer))
        for n, answer in enumerate(answers)
    ]
    by_path = {f"/slow{n}": hook.id for n, hook in enumerate(hooks)}
    make_due(hooks)

    def arrived() -> list[str]:
        return [received.path for received in handler.received]

    worker, outcome = start_drain(app)
    try:
        deadline = time.monotonic() + 20
        while len(arrived()) < 4 or len(leases()) < 6:
            assert time.monotonic() < deadline, f"{arrived()}, {leases()}"
            time.sleep(0.02)
        time.sleep(0.1)  # the threads are all held: nothing more is sent, nothing more claimed
        held = leases()
        # Every thread is busy, and the job has half as many calls again claimed (in one claim)
        # and signed, ready for the first thread that is free.
        assert len(arrived()) == 4 and len(held) == 4 + 4 // 2 and len(set(held.values())) == 1
        answers[int(arrived()[0].removeprefix("/slow"))].set()
        deadline = time.monotonic() + 20
        while len(arrived()) < 5:
            assert time.monotonic() < deadline, arrived()
            time.sleep(0.005)
        # The next call went out from those claimed ahead: no claim after the send ended.
        assert held[by_path[arrived()[4]]] == next(iter(held.values()))
    finally:
        for answer in answers:
            answer.set()
        worker.join(30)
    assert outcome["attempts"] == len(hooks)
    assert counts() == (len(hooks), 0, 0)
    assert sorted(arrived()) == sorted(by_path)
    assert db.session.scalar(select(func.count()).select_from(Attempt)) == len(hooks)


@pytest.mark.slow  # waits out half a lease's margin of 2 s
def test_a_call_claimed_ahead_that_no_thread_takes_in_time_is_handed_back(app, vendor, handler, caplog):
    app.config["WEBHOOK_WORKER_THREADS"] = 2
    app.config["WEBHOOK_DELIVERY_TIMEOUT"] = 4.0  # a lease's margin of 4 s: a call waits at most 2 s
    answer = threading.Event()
    url = handler.behave("/held", held_until=answer)
    hooks = [make_webhook(vendor, label=f"Held {n}", external_url=url) for n in range(3)]
    make_due(hooks)

    def handed_back() -> int:
        return sum("Handed back 1 of 1" in record.getMessage() for record in caplog.records)

    caplog.set_level("INFO", logger="webhookapp.engine.delivery")
    worker, outcome = start_drain(app)
    try:
        handler.wait_for("/held", 2, timeout=10)
        started = time.monotonic()
        deadline = started + 10
        while not handed_back():  # both threads are held: the third call waits, then goes back
            assert time.monotonic() < deadline, "the waiting call was not handed back"
            time.sleep(0.02)
        assert time.monotonic() - started > 1.0 and len(handler.requests_to("/held")) == 2
    finally:
        answer.set()
        worker.join(30)
    # It was claimed again and sent once the threads were free: nothing lost, nothing sent twice.
    assert outcome["attempts"] == len(hooks) and len(handler.requests_to("/held")) == len(hooks)
    assert counts() == (len(hooks), 0, 0)
    assert db.session.scalar(select(func.count()).select_from(Attempt)) == len(hooks)
