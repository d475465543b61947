"""``python -m workers``: an RQ worker with RQ's scheduler, plus the cron jobs (sweeper, pruning,
hourly sums) and a thread that runs recoveries' slices as they fall due.

Run as many as you like, on any machine that reaches the same Redis and database. Options:
``--burst`` (exit when the queue is empty), ``--no-cron`` (leave the periodic jobs to others).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from types import FrameType
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job
from rq.scheduler import RQScheduler

from webhookapp import create_app
from webhookapp.engine import dispatch, jobs, recovery, runtime
from webhookapp.engine.reconnect import or_else
from webhookapp.engine.timing import RECOVER_POLL
from webhookapp.infra import logs
from webhookapp.infra.outages import Outage

log = logging.getLogger("workers")


class DeliveryScheduler(RQScheduler):
    """RQ's scheduler process (retries due later), which ends with a warning when Redis fails
    under it (a master killed, a Sentinel failover). RQ's own logs the error with a traceback and
    re-raises; either way the process ends and its worker starts a new one (at its next
    maintenance, or when its loop starts again after losing Redis), and the sweeper sends what
    fell due meanwhile."""

    def work(self) -> None:
        try:
            super().work()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        except RedisError as exc:
            self.log.warning("RQ's scheduler lost Redis (%s); its worker starts a new one.", exc)


class RedisLost(logging.Filter):
    """RQ's worker logs Redis failing under a job ("found an unhandled exception, quitting") with
    a traceback. In a restart or a Sentinel failover that is expected, and this process starts the
    worker again (``main``): one warning line says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, RedisError):
            record.msg, record.args = f"{record.getMessage()} (Redis lost: {error})", None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class DeliveryWorker(SimpleWorker):
    """RQ's worker, running each job in its app's context, whose warm shutdown (SIGTERM, or
    Ctrl-C) also reaches the running delivery job: it stops taking work, hands back what it has
    not sent and ends once its sends in flight have ended and are recorded (docs/architecture.md,
    "Reliability"). A second signal is RQ's cold shutdown: the process exits at once and the
    sweeper takes back its leases."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any):
        self.app = app
        self.stop_requested = False  # by a signal: otherwise a return from work() is Redis lost
        super().__init__(*args, **kwargs)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        # Around all of RQ's handling of the job, its callbacks included: job code always has the app.
        with self.app.app_context():
            return super().perform_job(job, queue, execution)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's own (rq/worker/base.py), with :class:`DeliveryScheduler` in place of RQScheduler."""
        self.scheduler = DeliveryScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        finally:
            self.scheduler.release_locks()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
            self.scheduler.register_death()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        runtime.of(self.app).request_stop()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]  # rq leaves it unannotated


def run_cron(app: Flask, stop: threading.Event, interval: int) -> None:
    """Enqueue the sweeper every ``interval`` seconds, the alert scan every ``WEBHOOK_ALERT_INTERVAL``
    seconds, and pruning and the chart's hourly sums hourly, surviving Redis outages."""
    with app.app_context():
        cron = CronScheduler(connection=dispatch.redis_connection(), name=f"webhookapp-{threading.get_native_id()}")
    # ttl: a sweep that could not start within a few seconds is pointless; do not let them pile up.
    cron.register(jobs.sweep, queue_name=dispatch.QUEUE_NAME, interval=interval, ttl=max(2 * interval, 5), result_ttl=0)
    cron.register(jobs.prune, queue_name=dispatch.QUEUE_NAME, interval=3600, result_ttl=0)
    alert_interval = app.config["WEBHOOK_ALERT_INTERVAL"]
    cron.register(jobs.send_alerts, queue_name=dispatch.QUEUE_NAME, interval=alert_interval,
                  ttl=max(2 * alert_interval, 5), result_ttl=0)  # fmt: skip
    cron.register(jobs.sum_hours, queue_name=dispatch.QUEUE_NAME, interval=3600, result_ttl=0)
    # The jobs stay due while Redis is gone, so this loop tries every 0.2 s: one warning says so.
    outage = Outage(log, "Cron", "the periodic jobs wait for it")
    while not stop.is_set():
        try:
            cron.enqueue_jobs()
        except RedisError as exc:
            outage.failed(exc)
        else:
            outage.reached()
        stop.wait(max(min(cron.calculate_sleep_interval(), interval), 0.2))


def run_recoveries(app: Flask, stop: threading.Event) -> None:
    """Run the slices of recoveries as they fall due (docs/architecture.md, "Recover"), beside the
    RQ jobs: a slice never waits for a delivery job to end, and deliveries never wait for it."""
    while not stop.is_set():
        sent = 0
        try:
            with app.app_context():
                sent = or_else(recovery.run_due, 0)
        except Exception:  # a slice that failed is resumed once its lease runs out
            log.exception("A recovery slice failed")
        if not sent:
            stop.wait(RECOVER_POLL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument("--no-cron", action="store_true", help="do not run the sweeper and pruning here")
    options = parser.parse_args()
    logs.configure(os.environ.get("LOG_FORMAT", "text"))  # LOG_FORMAT=json: one JSON object per line
    # RQ would log every sweep, every second; our own loggers say what was delivered.
    logging.getLogger("rq.cron").setLevel(logging.WARNING)
    logging.getLogger("rq.worker").addFilter(RedisLost())

    app = create_app()
    with app.app_context():
        connection = dispatch.redis_connection()
    stop = threading.Event()
    if not options.burst:
        threading.Thread(target=run_recoveries, args=(app, stop), daemon=True).start()
    if not options.no_cron:
        threading.Thread(target=run_cron, args=(app, stop, app.config["WEBHOOK_SWEEP_INTERVAL"]), daemon=True).start()
    queue = Queue(dispatch.QUEUE_NAME, connection=connection)
    while True:
        try:
            # SimpleWorker runs jobs in this process: no fork per job, and the thread pool and HTTP
            # connections survive from one job to the next. A delivery job never runs user code.
            worker = DeliveryWorker([queue], connection=connection, app=app)  # it names itself in Redis
            worker.work(with_scheduler=True, burst=options.burst, logging_level="WARNING")
            # RQ's loop also returns, instead of raising, when Redis fails under it (a master
            # killed, a Sentinel failover): only a stop request or a burst ends this process.
            if options.burst or worker.stop_requested:
                break
            log.warning("The worker's loop ended without a stop request (Redis lost?); starting again in 1 s.")
        except RedisError as exc:
            log.warning("Lost Redis (%s); retrying in 1 s.", exc)
        time.sleep(1)
    stop.set()
    with app.app_context():
        runtime.of(app).finish_sends()  # sends a finished job left in flight record themselves first
    log.info("Worker stopped.")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # as gunicorn's child_exit hook does (gunicorn.conf.py)
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


if __name__ == "__main__":
    main()
