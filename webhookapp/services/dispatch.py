"""Redis and RQ, the transport (DESIGN §9): wake workers, schedule retries. Never the source of truth.

Every call here may fail when Redis is down or has lost its data; callers have committed first,
and the sweeper finds whatever a lost message would have announced.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

log = logging.getLogger(__name__)

QUEUE_NAME = "webhooks"
DELIVER_JOB = "workers.jobs.deliver_due"
# Set while a delivery job waits in the queue: one waiting job is enough to drain everything due.
WAKE_FLAG = "webhookapp:deliver-queued"
WAKE_FLAG_TTL = 30
# Rung on every wake: a delivery job that has just run out of work waits on it for a moment
# (WEBHOOK_IDLE_WAIT), so a quiet system delivers the next event without a new job's overhead.
DOORBELL = "webhookapp:doorbell"
DRAIN_BUDGET = 60.0  # seconds a delivery job keeps taking new work before it hands over


def redis_connection() -> Redis:
    """The app's Redis client (one per app and process), from ``REDIS_URL``."""
    extensions = current_app.extensions
    if "webhookapp.redis" not in extensions:
        url = current_app.config.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        extensions["webhookapp.redis"] = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    return extensions["webhookapp.redis"]


def queue() -> Queue:
    return Queue(QUEUE_NAME, connection=redis_connection())


def job_timeout() -> int:
    """A drain returns at its budget (sends still in flight record themselves); plus a margin."""
    return int(DRAIN_BUDGET + 60)


def wake(webhook_ids: list[str] | None = None) -> bool:
    """Ring the doorbell and make sure a delivery job is queued; False if Redis could not be reached (logged)."""
    try:
        connection = redis_connection()
        pipe = connection.pipeline(transaction=False)
        pipe.set(WAKE_FLAG, 1, nx=True, ex=WAKE_FLAG_TTL)
        pipe.lpush(DOORBELL, 1)
        pipe.ltrim(DOORBELL, 0, 0)  # one ring is enough
        pipe.expire(DOORBELL, WAKE_FLAG_TTL)
        flag_was_unset = pipe.execute()[0]
        if flag_was_unset:
            queue().enqueue(DELIVER_JOB, webhook_ids, job_timeout=job_timeout(), result_ttl=60, failure_ttl=86400)
        return True
    except RedisError as exc:
        log.warning("Could not reach Redis to wake the workers (%s); the sweeper will deliver.", exc)
        return False


def await_doorbell(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a ring; True if there was one (False too if Redis is unreachable)."""
    try:
        # Below the connection's socket timeout (5 s), which would cut a longer wait.
        return redis_connection().blpop([DOORBELL], timeout=min(max(timeout, 0.001), 4.0)) is not None
    except RedisError as exc:
        log.warning("Could not wait for the doorbell: %s", exc)
        return False


def woken() -> None:
    """Called by a delivery job as it starts: later events must queue a new job."""
    try:
        redis_connection().delete(WAKE_FLAG)
    except RedisError as exc:
        log.warning("Could not clear the wake flag: %s", exc)


def schedule(webhook_id: str, due: datetime) -> bool:
    """Ask RQ's scheduler for a delivery job at ``due`` (a retry); False if Redis is unreachable."""
    try:
        queue().enqueue_at(due, DELIVER_JOB, [webhook_id], job_timeout=job_timeout(), result_ttl=60, failure_ttl=86400)
        return True
    except RedisError as exc:
        log.warning("Could not schedule the retry of %s (%s); the sweeper will.", webhook_id, exc)
        return False
