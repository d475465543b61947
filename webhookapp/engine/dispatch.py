"""Redis and RQ, the transport (docs/architecture.md, "Reliability"): wake workers, schedule
retries. Never the source of truth.

Every call here may fail when Redis is down or has lost its data; callers have committed first,
and the sweeper finds whatever a lost message would have announced.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from flask import current_app
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError
from rq import Queue

from webhookapp.engine.timing import (
    DOORBELL_WAIT_MAX,
    DRAIN_BUDGET,
    JOB_TIMEOUT_MARGIN,
    REDIS_CONNECT_TIMEOUT,
    REDIS_SOCKET_TIMEOUT,
    WAKE_FLAG_TTL,
)
from webhookapp.infra import redis_client
from webhookapp.infra.outages import Outage

log = logging.getLogger(__name__)

QUEUE_NAME = "webhooks"
# Jobs by name: jobs.py imports the delivery loop, which imports this.
DELIVER_JOB = "webhookapp.engine.jobs.deliver_due"
PURGE_JOB = "webhookapp.engine.jobs.purge_deleted"
RECOVER_JOB = "webhookapp.engine.jobs.recover"
# Set while a delivery job waits in the queue: one waiting job is enough to drain everything due.
WAKE_FLAG = "webhookapp:deliver-queued"
# Rung on every wake: a delivery job that has just run out of work waits on it for a moment
# (WEBHOOK_IDLE_WAIT), so a quiet system delivers the next event without a new job's overhead.
DOORBELL = "webhookapp:doorbell"


def redis_connection() -> Redis:
    """The app's Redis client (one per app and process), from ``REDIS_URL`` (Sentinels too:
    :mod:`webhookapp.infra.redis_client`)."""
    extensions = current_app.extensions
    if "webhookapp.redis" not in extensions:
        url = redis_client.configured_url(current_app)
        extensions["webhookapp.redis"] = redis_client.connect(
            url, connect_timeout=REDIS_CONNECT_TIMEOUT, socket_timeout=REDIS_SOCKET_TIMEOUT
        )
    connection: Redis = extensions["webhookapp.redis"]
    return connection


def outage(who: str, meanwhile: str) -> Outage:
    """The app's record of an outage of its Redis, one per ``who``: a process says once that it
    cannot wake the workers or wait for the doorbell, not on every event or every turn of a wait."""
    outages: dict[str, Outage] = current_app.extensions.setdefault("webhookapp.redis_outages", {})
    if who not in outages:
        outages[who] = Outage(log, who, meanwhile)
    return outages[who]


def queue() -> Queue:
    return Queue(QUEUE_NAME, connection=redis_connection())


def job_timeout() -> int:
    """A drain returns at its budget (sends still in flight record themselves); plus a margin."""
    return int(DRAIN_BUDGET + JOB_TIMEOUT_MARGIN)


# One command for the event API's hot path: set the flag if unset, ring (one ring is enough),
# and say whether the flag was unset, i.e. whether a job must be queued.
_RING = """
local unset = redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1])
redis.call('LPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], 0, 0)
redis.call('EXPIRE', KEYS[2], ARGV[1])
if unset then return 1 else return 0 end
"""


def _ring() -> Script:
    extensions = current_app.extensions
    if "webhookapp.ring" not in extensions:
        extensions["webhookapp.ring"] = redis_connection().register_script(_RING)
    script: Script = extensions["webhookapp.ring"]
    return script


def wake(webhook_ids: list[str] | None = None) -> bool:
    """Ring the doorbell and make sure a delivery job is queued; False if Redis could not be reached (logged
    once per outage)."""
    unreached = outage("Waking the workers", "the sweeper delivers meanwhile")
    try:
        if _ring()(keys=[WAKE_FLAG, DOORBELL], args=[WAKE_FLAG_TTL]):
            queue().enqueue(DELIVER_JOB, webhook_ids, job_timeout=job_timeout(), result_ttl=60, failure_ttl=86400)
    except RedisError as exc:
        unreached.failed(exc)
        return False
    unreached.reached()
    return True


def await_doorbell(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a ring; True if there was one.

    When Redis cannot be reached this sleeps out the wait instead (and says False): the caller
    loops on it, and a refused connection would otherwise return at once, over and over."""
    wait = min(max(timeout, 0.001), DOORBELL_WAIT_MAX)
    unreached = outage("Waiting for the doorbell", "a delivery job sleeps out its waits")
    try:
        rung = redis_connection().blpop([DOORBELL], timeout=wait) is not None
    except RedisError as exc:
        unreached.failed(exc)
        time.sleep(wait)
        return False
    unreached.reached()
    return rung


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
        log.warning("Could not schedule the retry of %s (%s); the sweeper will.", webhook_id, exc,
                    extra={"webhook_id": webhook_id})  # fmt: skip
        return False


def purge(webhook_id: str) -> bool:
    """Queue the removal of a deleted webhook's attempts; False if Redis is unreachable (the
    hourly prune removes them then)."""
    try:
        queue().enqueue(PURGE_JOB, webhook_id, job_timeout=3600, result_ttl=0, failure_ttl=86400)
        return True
    except RedisError as exc:
        log.warning("Could not queue the purge of %s (%s); the hourly prune will.", webhook_id, exc,
                    extra={"webhook_id": webhook_id})  # fmt: skip
        return False


def recover(recovery_id: int, generation: int, due: datetime | None = None) -> bool:
    """Queue the next slice of a recovery (at ``due``, if given); False if Redis is unreachable
    (the sweeper queues it then)."""
    timeout = int(float(current_app.config["WEBHOOK_VALIDATION_TIMEOUT"]) + JOB_TIMEOUT_MARGIN)
    try:
        if due is None:
            queue().enqueue(RECOVER_JOB, recovery_id, generation, job_timeout=timeout, result_ttl=0, failure_ttl=86400)
        else:
            queue().enqueue_at(
                due, RECOVER_JOB, recovery_id, generation, job_timeout=timeout, result_ttl=0, failure_ttl=86400
            )
        return True
    except RedisError as exc:
        log.warning("Could not queue recovery %s (%s); the sweeper will.", recovery_id, exc)
        return False
