"""Nothing lost (docs/architecture.md, "Reliability"): real worker processes are killed, Redis is
flushed and stopped."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, start_worker, stop
from webhookapp.engine import ingest, runtime
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.services import tokens

pytestmark = [
    pytest.mark.slow,  # real worker processes, killed and started again
    pytest.mark.skipif(
        bool(os.environ.get("TEST_REDIS_URL")),
        reason="stops and restarts Redis: needs the suite's private redis-server",
    ),
]


def fresh(hook_id: str) -> Webhook:
    db.session.rollback()  # end the test's read transaction so it sees the workers' commits
    return db.session.get(Webhook, hook_id)


def wait_until(condition, timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def test_a_worker_killed_mid_request_is_replaced_and_the_trigger_delivered(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/slow", delay=30))
    settings = {"WEBHOOK_DELIVERY_TIMEOUT": 1.5}  # lease = 3 s
    worker = start_worker(app, **settings)
    try:
        post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
        handler.wait_for("/slow", 1, timeout=15)
        worker.send_signal(signal.SIGKILL)
        stop(worker)
        assert fresh(hook.id).lease_expires_at is not None  # in flight, its worker dead
        handler.behave("/slow")  # the handler recovers
        worker = start_worker(app, **settings)
        handler.wait_for("/slow", 2, timeout=20)
        wait_until(lambda: fresh(hook.id).success_count == 1)
    finally:
        stop(worker)
    stored = fresh(hook.id)
    assert stored.lease_expires_at is None and stored.next_trigger_at is None
    assert stored.events_count == 1 and stored.triggers_count == 1  # the lost attempt left no record


def test_events_survive_redis_losing_its_data(app, client, vendor, handler, redis_server):
    hook = make_webhook(vendor, external_url=handler.behave("/flushed"))
    status, _ = post_event(
        client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id
    )
    assert status == 202
    redis_server.stop()  # everything Redis knew is gone (it keeps nothing on disk)
    redis_server.start()
    worker = start_worker(app)
    try:
        handler.wait_for("/flushed", 1, timeout=15)
        wait_until(lambda: fresh(hook.id).success_count == 1)
    finally:
        stop(worker)


def test_events_accepted_while_redis_is_down_are_delivered_once_it_is_back(app, client, vendor, handler, redis_server):
    hook = make_webhook(vendor, external_url=handler.behave("/down"))
    token = api_token(vendor.account)
    redis_server.stop()
    status, body = post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
    assert status == 202 and body["webhooks"] == [hook.id]
    redis_server.start()
    worker = start_worker(app)
    try:
        handler.wait_for("/down", 1, timeout=15)
    finally:
        stop(worker)


def test_a_web_process_dying_between_commit_and_enqueue_loses_nothing(app, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/crash"))
    _token, plain = tokens.create_token(vendor.account, "crash")
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    # What the event API calls, without its wake-up:
    ingest.ingest_as(f"ApiKey {plain}", body, runtime.of(app).group_commit, wake=False)
    worker = start_worker(app)
    try:
        handler.wait_for("/crash", 1, timeout=15)
    finally:
        stop(worker)


def test_a_hung_handler_does_not_hold_up_other_webhooks(app, client, vendor, handler):
    # The hung handler answers only when the test is over: the quick one is served meanwhile,
    # however long the machine takes, or not at all.
    hung = make_webhook(vendor, label="Hung", external_url=handler.behave("/hung", held_until=threading.Event()))
    other_product = vendor.products[1].id
    quick = make_webhook(vendor, label="Quick", product_id=other_product, external_url=handler.behave("/quick"))
    token = api_token(vendor.account)
    worker = start_worker(app, WEBHOOK_DELIVERY_TIMEOUT=60)
    try:
        post_event(client, token, object_class="fulfillment_request", product_id=hung.product_id)
        handler.wait_for("/hung", 1, timeout=15)
        post_event(client, token, object_class="fulfillment_request", product_id=quick.product_id)
        handler.wait_for("/quick", 1, timeout=15)
        # and again, while the first handler still hangs
        post_event(client, token, object_class="fulfillment_request", product_id=quick.product_id)
        handler.wait_for("/quick", 2, timeout=15)
        assert fresh(hung.id).lease_expires_at is not None  # still in flight
    finally:
        stop(worker)


def test_statistics_are_exact_with_concurrent_workers(app, client, vendor, handler):
    hooks = [
        make_webhook(vendor, label=f"Hook {n}", external_url=handler.behave(f"/mixed{n}", status=200 if n % 2 else 500))
        for n in range(6)
    ]
    token = api_token(vendor.account)
    settings = {"WEBHOOK_MAX_ATTEMPTS": 100, "WEBHOOK_RETRY_BASE": 0.05, "WEBHOOK_RETRY_FACTOR": 1.5}
    workers = [start_worker(app, **settings), start_worker(app, "--no-cron", **settings)]
    try:
        for _ in range(20):
            post_event(client, token, object_class="fulfillment_request", product_id=hooks[0].product_id)
            time.sleep(0.02)
        # Successful webhooks settle; failing ones keep retrying: stop the workers, then count.
        wait_until(lambda: all(fresh(h.id).success_count >= 1 for h in hooks[1::2]))
        time.sleep(0.5)
    finally:
        for worker in workers:
            stop(worker)
    db.session.rollback()
    for hook in hooks:
        stored = db.session.get(Webhook, hook.id)
        attempts = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id)).all()
        assert stored.events_count == 20
        assert stored.triggers_count == len(attempts)
        assert stored.success_count == sum(a.success for a in attempts)
        assert stored.failure_count == sum(not a.success for a in attempts)
        assert stored.triggers_count == stored.success_count + stored.failure_count


def test_a_worker_outlives_redis_restarting_under_it_without_a_traceback(app, client, vendor, handler, redis_server):
    """RQ's scheduler process raised and logged a traceback whenever Redis went away under it (a
    restart, a Sentinel failover); the worker now ends it with a warning and starts a new one."""
    hook = make_webhook(vendor, external_url=handler.behave("/restarted"))
    token = api_token(vendor.account)
    worker = start_worker(app)
    try:
        post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
        handler.wait_for("/restarted", 1, timeout=15)
        redis_server.stop()
        time.sleep(3)  # the scheduler's heartbeat (every second) meets no Redis
        redis_server.start()
        post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
        handler.wait_for("/restarted", 2, timeout=30)
        assert worker.poll() is None
        log = Path(worker.log_path).read_text()
    finally:
        stop(worker)
    assert "Traceback" not in log, log
    assert "RQ's scheduler lost Redis" in log
