"""PostgreSQL drops every connection (a restart, a failover, ``pg_terminate_backend``): the event
API still answers 202, the delivery loop and real worker processes carry on, and every success a
handler returned is recorded exactly once (docs/architecture.md, "Reliability")."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, start_worker, stop
from webhookapp.engine import delivery, dispatch, reconnect, runtime, triggers
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Attempt, Event, Webhook

pytestmark = pytest.mark.postgresql  # dropped connections are a PostgreSQL fault

TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def drop_connections(url: str) -> int:
    """Terminate every other connection to the test database; returns how many there were."""
    db.session.rollback()  # the test's own connection goes back to the pool, to die there too
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(TERMINATE).fetchone()[0]


def paths(hooks: list[Webhook], handler) -> dict[str, str]:
    return {hook.id: hook.external_url.removeprefix(handler.url) for hook in hooks}


def recorded_once(paths: dict[str, str], handler) -> None:
    """Every success the handler returned is recorded exactly once, and each webhook was sent to."""
    reconnect.close_session()
    for webhook_id, path in paths.items():
        stored = db.session.get(Webhook, webhook_id)
        attempts = db.session.scalar(select(func.count()).where(Attempt.webhook_id == webhook_id, Attempt.success))
        assert stored.success_count == attempts == len(handler.requests_to(path)) >= 1, path


def test_the_event_api_answers_after_the_database_drops_its_connections(app, client, vendor, postgresql):
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    assert post_event(client, token, **body)[0] == 202  # the pool holds a live connection now
    for round_number in range(3):
        assert drop_connections(postgresql) >= 1
        assert post_event(client, token, **body, id=f"after-{round_number}")[0] == 202
        assert post_event(client, token, **body)[0] == 202  # no client id: stored once all the same
    db.session.rollback()
    dispose_engines()  # the test's own connections died too: it reads on fresh ones
    assert db.session.scalar(select(func.count()).select_from(Event)) == 7
    assert db.session.get(Webhook, hook.id).events_count == 7


@pytest.mark.slow
def test_a_drain_records_every_outcome_while_connections_drop(app, vendor, handler, postgresql):
    app.config["WEBHOOK_DELIVERY_TIMEOUT"] = 1.0  # leases of 3 s: a lost claim comes back soon
    hooks = [
        make_webhook(vendor, label=f"Hook {n}", external_url=handler.behave(f"/slow{n}", delay=0.05))
        for n in range(30)
    ]
    targets = paths(hooks, handler)
    for hook in hooks:
        triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    stop_dropping = threading.Event()

    def keep_dropping() -> None:
        with psycopg.connect(postgresql, autocommit=True) as connection:
            while not stop_dropping.wait(0.15):
                connection.execute(TERMINATE)

    dropper = threading.Thread(target=keep_dropping, daemon=True)
    dropper.start()
    try:
        delivery.drain(runtime.of(app), budget=3)
    finally:
        stop_dropping.set()
        dropper.join()
    runtime.of(app).finish_sends()  # the sends the drain handed over end and record themselves
    reconnect.close_session()  # this test's own connection may have died with the others
    time.sleep(3.2)  # any claim lost with its connection is reclaimed once its lease runs out
    deadline = time.monotonic() + 60
    while True:  # on a busy machine a lease may run out only now: wait on the state, not a guess
        triggers.reclaim_expired()
        delivery.drain(runtime.of(app), budget=5)
        reconnect.close_session()
        if all(count >= 1 for count in db.session.scalars(select(Webhook.success_count))):
            break
        assert time.monotonic() < deadline, "a trigger was neither delivered nor handed on"
        time.sleep(0.5)
    recorded_once(targets, handler)


@pytest.mark.slow
def test_real_workers_deliver_everything_while_connections_drop(app, client, vendor, handler, postgresql):
    hooks = [
        make_webhook(vendor, label=f"Hook {n}", external_url=handler.behave(f"/w{n}", delay=0.02)) for n in range(12)
    ]
    targets = paths(hooks, handler)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hooks[0].product_id}
    settings = {"WEBHOOK_DELIVERY_TIMEOUT": 1}  # leases of 3 s: a claim lost with its connection comes back soon
    workers = [start_worker(app, **settings), start_worker(app, "--no-cron", **settings)]
    try:
        for round_number in range(5):
            assert post_event(client, token, **body)[0] == 202
            time.sleep(0.1)
            drop_connections(postgresql)
            time.sleep(0.3 * round_number)
        db.session.remove()
        dispose_engines()  # this process's own pool: its connections died too
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            db.session.rollback()
            pending = db.session.scalar(
                select(func.count()).where(Webhook.next_trigger_at.is_not(None) | Webhook.lease_id.is_not(None))
            )
            if not pending:
                break
            time.sleep(0.2)
        assert not pending
    finally:
        for worker in workers:
            stop(worker)
    recorded_once(targets, handler)
    connection = Redis.from_url(app.config["REDIS_URL"])
    failed = FailedJobRegistry(queue=Queue(dispatch.QUEUE_NAME, connection=connection))
    jobs = [Job.fetch(job_id, connection=connection) for job_id in failed.get_job_ids()]
    assert not jobs, "\n".join(f"{job.func_name}: {job.latest_result().exc_string}" for job in jobs)
