"""The gauges read when ``/metrics`` is scraped: what the database and Redis hold now.

Each is one cheap query: the due triggers and the oldest of them through the partial index
``ix_webhooks_due``, leases through the index on ``lease_expires_at``, RQ's queue and scheduled
retries as one ``LLEN`` and one ``ZCARD``, the enabled webhooks Out of order through the partial
index ``ix_webhooks_out_of_order`` (a few rows: under a millisecond with 100,000 webhooks, where
reading the table took 25 ms). These describe the whole
service, not one process: every web process reports the same values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import Select, func, select
from sqlalchemy.exc import SQLAlchemyError

from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, triggers
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

log = logging.getLogger(__name__)


class StateCollector:
    """A prometheus_client collector of the gauges above, read once per scrape."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("webhookapp_state_up", "Whether the scrape could read each source (1) or not (0).",
                               labels=["source"])  # fmt: skip
        try:
            yield from _database_gauges()
            up.add_metric(["database"], 1)
        except SQLAlchemyError as exc:
            db.session.rollback()
            log.warning("Metrics: could not read the trigger state: %s", type(exc).__name__)
            up.add_metric(["database"], 0)
        try:
            yield from _redis_gauges()
            up.add_metric(["redis"], 1)
        except RedisError as exc:
            log.warning("Metrics: could not read RQ's queue: %s", type(exc).__name__)
            up.add_metric(["redis"], 0)
        yield up


def _database_gauges() -> list[Metric]:
    now = utcnow()
    due = db.session.scalar(triggers.due_count_query(now)) or 0
    oldest = db.session.scalar(triggers.next_due_query())
    leased = db.session.scalar(select(func.count()).where(Webhook.lease_expires_at.is_not(None)))
    out_of_order = db.session.scalar(out_of_order_query())
    db.session.rollback()  # read only: end the transaction, leave nothing open in the pool
    overdue = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return [
        GaugeMetricFamily("webhookapp_triggers_due", "Pending triggers due now and not in flight.", value=due),
        GaugeMetricFamily("webhookapp_triggers_due_oldest_seconds",
                          "How long the oldest due trigger has waited (0: none is due).", value=overdue),
        GaugeMetricFamily("webhookapp_triggers_leased", "Attempts in flight: triggers under a lease.", value=leased),
        GaugeMetricFamily("webhookapp_webhooks_out_of_order",
                          "Enabled webhooks Out of order: nothing is sent until a person re-enables them.",
                          value=out_of_order),
    ]  # fmt: skip


def out_of_order_query() -> Select[Any]:
    """How many enabled webhooks are Out of order: written as ``ix_webhooks_out_of_order``'s
    condition, so that PostgreSQL counts from that index (``IS TRUE`` would not match it)."""
    return select(func.count()).where(Webhook.out_of_order, Webhook.active)


def _redis_gauges() -> list[Metric]:
    connection = dispatch.redis_connection()
    queue = Queue(dispatch.QUEUE_NAME, connection=connection)
    waiting = GaugeMetricFamily("webhookapp_rq_queue_length", "Jobs waiting in RQ's queue.", labels=["queue"])
    waiting.add_metric([queue.name], queue.count)
    scheduled = GaugeMetricFamily("webhookapp_rq_scheduled_jobs", "Jobs RQ's scheduler holds for later (retries).",
                                  labels=["queue"])  # fmt: skip
    scheduled.add_metric([queue.name], connection.zcard(queue.scheduled_job_registry.key))
    return [waiting, scheduled]
