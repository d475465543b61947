"""Redis through Sentinels (docs/operations.md, "Redis high availability"): the master is killed
with SIGKILL while events arrive, a replica is promoted, and every process follows it without a
restart. Nothing accepted is lost or counted twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis import Redis

from tests.conftest import PASSWORD, make_webhook
from tests.engine import api_token, post_event, start_worker, stop
from tests.sentinel import SentinelCluster
from webhookapp.engine import dispatch
from webhookapp.infra import redis_client
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Event, Webhook
from webhookapp.services import accounts

pytestmark = pytest.mark.slow  # a Redis master, a replica, three Sentinels and a worker process


@pytest.fixture(scope="module")
def standing() -> Iterator[list[SentinelCluster]]:
    """The module's cluster while its master stands: starting one takes seconds (the Sentinels
    find each other through the master's hello messages, every 2 s)."""
    kept: list[SentinelCluster] = []
    yield kept
    for cluster in kept:
        cluster.close()


@pytest.fixture
def sentinels(standing: list[SentinelCluster]) -> Iterator[SentinelCluster]:
    """A cluster whose master is the one it started with, emptied for this test; a test that
    kills the master leaves it to be closed, and the next test gets a new one."""
    if not standing:
        cluster = SentinelCluster()
        standing.append(cluster)
        cluster.start()
    cluster = standing[0]
    with Redis(port=cluster.master_port) as master:
        master.flushall()
    yield cluster
    if not cluster.master_standing():
        standing.remove(cluster)
        cluster.close()


@pytest.fixture
def redis_url(sentinels: SentinelCluster) -> str:
    """The app and its worker reach Redis only through the Sentinels."""
    return sentinels.url


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met in time: {what}")
        time.sleep(0.05)


def fresh(hook_id: str) -> Webhook:
    db.session.rollback()  # see the worker's commits
    return db.session.get(Webhook, hook_id)


def test_the_url_names_the_master_the_sentinels_know(app, client, sentinels):
    assert redis_client.master_address(dispatch.redis_connection()) == f"127.0.0.1:{sentinels.master_port}"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json() == {"database": "ok", "redis": "ok", "redis_master": f"127.0.0.1:{sentinels.master_port}"}


def test_the_login_throttle_and_the_dashboard_use_the_master_the_sentinels_name(app, client, auth, vendor, sentinels):
    app.config.update(LOGIN_FAILURE_LIMIT="3 per 15 minutes")
    for number in range(3):  # from other addresses than the admin's below
        client.post("/login", data={"email": "alice@acme.test", "password": "wrong"},
                    environ_base={"REMOTE_ADDR": f"10.0.0.{number}"})  # fmt: skip
    throttled = client.post("/login", data={"email": "alice@acme.test", "password": PASSWORD},
                            environ_base={"REMOTE_ADDR": "10.0.0.9"})  # fmt: skip
    assert throttled.status_code == 429
    with Redis(port=sentinels.master_port) as master:
        assert master.keys("LIMITS:*"), "the counts are kept on the master the Sentinels name"

    accounts.create_user(vendor.account.id, "root@acme.test", PASSWORD, name="Root", is_admin=True)
    hook = make_webhook(vendor)
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    auth.login("root@acme.test")
    queues = client.get("/admin/rq/0/data/queues.json").get_json()["queues"]
    assert {queue["name"]: queue["count"] for queue in queues}[dispatch.QUEUE_NAME] == 1
    assert app.redis_conn is dispatch.redis_connection()  # the app's own client, not one of its own


def test_every_event_is_delivered_once_across_a_master_killed_mid_load(app, client, vendor, handler, sentinels, capsys):
    hooks = [
        make_webhook(vendor, label=f"Hook {n}", product_id=product.id, external_url=handler.behave(f"/h{n}"))
        for n, product in enumerate(vendor.products[:2])
    ]
    token = api_token(vendor.account)

    def post_round(hooks: list[Webhook], rounds: int = 3) -> None:
        for _ in range(rounds):
            for hook in hooks:
                status, _ = post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
                assert status == 202

    worker = start_worker(app, WEBHOOK_SWEEP_INTERVAL=1)
    try:
        post_round(hooks)
        wait_until(lambda: all(fresh(h.id).success_count >= 1 for h in hooks), "deliveries before the kill")

        sentinels.kill_master()
        killed = time.monotonic()
        post_round(hooks)  # no master known: the database keeps them, and they are accepted all the same
        wait_until(lambda: sentinels.master_address() == ("127.0.0.1", sentinels.replica_port), "the promotion")
        promoted = time.monotonic() - killed
        seen_before = len(handler.received)
        post_round(hooks)  # their wake-up reaches the new master
        wait_until(lambda: len(handler.received) > seen_before, "a delivery through the new master")
        first_delivery = time.monotonic() - killed

        def settled() -> bool:
            stored = [fresh(h.id) for h in hooks]
            return all(s.events_count == 9 and s.next_trigger_at is None and s.lease_expires_at is None
                       for s in stored)  # fmt: skip

        wait_until(settled, "every trigger finished")
        assert worker.poll() is None, "the worker must follow the failover, not exit"
    finally:
        stop(worker, show_log=True)
    with capsys.disabled():
        print(
            f"\nSentinel failover: replica promoted {promoted:.2f} s after the master's SIGKILL; "
            f"first delivery through the new master {first_delivery:.2f} s after it"
        )

    db.session.rollback()
    for hook in hooks:
        stored = db.session.get(Webhook, hook.id)
        attempts = db.session.query(Attempt).filter_by(webhook_id=hook.id, kind="trigger").all()
        assert stored.events_count == 9  # counted once each
        assert stored.success_count == len([a for a in attempts if a.success]) == stored.triggers_count
        last_success = max(a.started_at for a in attempts if a.success)
        events = db.session.query(Event).filter(Event.product_id == hook.product_id).all()
        assert len(events) == 9 and all(event.created_at <= last_success for event in events)
    assert client.get("/readyz").get_json()["redis_master"] == f"127.0.0.1:{sentinels.replica_port}"
