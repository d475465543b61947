"""RQ job functions (docs/architecture.md, "Layers"). They take ids (never objects), run in an
app context and call the engine.

The app they run in is the caller's when one is active (tests), else the one the worker entry
point (``python -m workers``) hands over with :func:`use_app_factory`: the engine does not
import the application factory that sits above it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, has_app_context

from webhookapp.engine import delivery, maintenance
from webhookapp.engine.maintenance import alerts, hourly
from webhookapp.engine.reconnect import close_session, or_else
from webhookapp.infra.extensions import app_object

T = TypeVar("T")
_factory: Callable[[], Flask] | None = None
_app: tuple[int, Flask] | None = None


def use_app_factory(factory: Callable[[], Flask]) -> None:
    """Have jobs run outside an app context build their app with ``factory`` (once per process)."""
    global _factory
    _factory = factory


def worker_app() -> Flask:
    """The app jobs run in: the caller's when one is active (tests), else one per process."""
    global _app
    if has_app_context():
        return app_object()
    if _app is None or _app[0] != os.getpid():
        if _factory is None:
            raise RuntimeError("No application for jobs: start workers with `python -m workers`.")
        _app = (os.getpid(), _factory())
    return _app[1]


def _in_app(work: Callable[[], T]) -> T:
    with worker_app().app_context():
        try:
            return work()
        finally:
            close_session()


def deliver_due(webhook_ids: list[str] | None = None) -> int:
    """Deliver the due triggers of these webhooks, then any others due; a duplicate job finds none."""
    return _in_app(lambda: delivery.drain(webhook_ids))


def sweep() -> bool:
    """Reclaim expired leases and wake the workers if a trigger is due (runs every second)."""
    return _in_app(delivery.sweep)


def prune() -> dict[str, int] | None:
    """Prune attempts and events past their retention, and deleted webhooks' attempts (hourly;
    one worker at a time)."""
    return _in_app(lambda: or_else(maintenance.prune, None))


def sum_hours() -> int | None:
    """Sum the settled hours of every webhook's attempts for the details page's chart (hourly;
    one worker at a time)."""
    return _in_app(lambda: or_else(hourly.sum_settled, None))


prune_attempts = prune  # the name jobs queued before an upgrade carry


def send_alerts() -> int:
    """Mail the account's users about webhooks gone Out of order or recovered (every
    ``WEBHOOK_ALERT_INTERVAL`` seconds; one worker at a time)."""
    return _in_app(lambda: or_else(alerts.send_alerts, 0))


def purge_deleted(webhook_id: str) -> int:
    """Remove a deleted webhook's attempts (queued by the deletion)."""
    return _in_app(lambda: or_else(lambda: maintenance.purge_deleted(webhook_id), 0))
