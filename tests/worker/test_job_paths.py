"""Jobs keep their dotted paths (docs/architecture.md, "Layers"): RQ stores each job by the path
of its function, and some are scheduled hours ahead, so a job queued before an upgrade must
still run after it. Each path is queued here by its string, as RQ stored it, and run by the
worker's own class."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from rq.job import JobStatus
from rq.utils import import_attribute

from tests.conftest import Tenant, make_webhook
from tests.engine import QuickUnsubscribe
from tests.servers import HandlerServer
from webhookapp.engine import dispatch, jobs, triggers
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from workers.__main__ import DeliveryWorker

# Every path a job has been queued by, and the arguments it was queued with.
PATHS: list[tuple[str, tuple[Any, ...]]] = [
    ("webhookapp.engine.jobs.deliver_due", ()),
    ("webhookapp.engine.jobs.sweep", ()),
    ("webhookapp.engine.jobs.prune", ()),
    ("webhookapp.engine.jobs.prune_attempts", ()),
    ("webhookapp.engine.jobs.sum_hours", ()),
    ("webhookapp.engine.jobs.send_alerts", ()),
    ("webhookapp.engine.jobs.purge_deleted", ("WH-0000-0000-0000",)),
    ("workers.jobs.deliver_due", ()),
    ("workers.jobs.sweep", ()),
    ("workers.jobs.prune_attempts", ()),
]
DELIVERING = {"deliver_due", "sweep"}  # jobs that end with the due trigger delivered


class QuickDeliveryWorker(QuickUnsubscribe, DeliveryWorker):
    """``python -m workers``'s worker, whose burst ends without a second's wait (tests/engine.py)."""


def run_delivery_worker(app: Flask) -> None:
    """The worker of ``python -m workers``, in this process, until the queue is empty."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(dispatch.QUEUE_NAME, connection=connection)
    QuickDeliveryWorker([queue], connection=connection, app=app).work(burst=True, logging_level="WARNING")


@pytest.mark.parametrize(("path", "args"), PATHS, ids=[path for path, _args in PATHS])
def test_a_job_queued_by_its_old_path_runs(
    app: Flask, vendor: Tenant, handler: HandlerServer, path: str, args: tuple[Any, ...]
) -> None:
    assert callable(import_attribute(path))
    hook = make_webhook(vendor, external_url=handler.behave("/queued"))
    triggers.make_due_now(hook, count_event=True)
    db.session.commit()
    queue = Queue(dispatch.QUEUE_NAME, connection=Redis.from_url(app.config["REDIS_URL"]))

    job = queue.enqueue(path, *args)
    run_delivery_worker(app)

    assert job.get_status(refresh=True) == JobStatus.FINISHED, job.latest_result()
    if path.rsplit(".", 1)[1] in DELIVERING:  # the sweeper wakes a delivery job, which runs too
        [request] = handler.wait_for("/queued")
        assert request.json()["webhook_id"] == hook.id
        db.session.expire_all()
        assert db.session.get(Webhook, hook.id).success_count == 1


def test_a_job_outside_an_app_context_says_how_to_run_it() -> None:
    with pytest.raises(jobs.NoAppContext, match="python -m workers"):
        jobs.sweep()
