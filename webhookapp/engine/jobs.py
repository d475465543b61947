"""RQ job functions (docs/architecture.md, "Layers"). They take ids (never objects), run in an
app context and call the engine.

The app context is the worker's: ``python -m workers`` pushes its app's context around every job
it performs, and tests call jobs inside their own. The engine does not import the application
factory that sits above it. RQ stores each job by its dotted path, so these names stay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, has_app_context

from webhookapp.engine import delivery, maintenance, recovery, runtime
from webhookapp.engine.maintenance import alerts, hourly
from webhookapp.engine.reconnect import close_session, or_else

T = TypeVar("T")


class NoAppContext(RuntimeError):
    """A job called outside an app context: it cannot know its database, Redis or settings."""


def _in_app(work: Callable[[], T]) -> T:
    """Run ``work`` in a fresh context of the app in context, so that its database session is the
    job's own and is closed after it."""
    if not has_app_context():
        raise NoAppContext(
            "Jobs run in an app context: start workers with `python -m workers`, or push one (app.app_context())."
        )
    with current_app.app_context():
        try:
            return work()
        finally:
            close_session()


def deliver_due(webhook_ids: list[str] | None = None) -> int:
    """Deliver the due triggers of these webhooks, then any others due; a duplicate job finds none."""
    return _in_app(lambda: delivery.drain(runtime.current(), webhook_ids))


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


def recover(recovery_id: int, generation: int) -> int:
    """Run one slice of a recovery (queued by the recovery itself, its start, or the sweeper)."""
    # Not run again on a dropped connection: the slice's lease runs out and the sweeper resumes it.
    return _in_app(lambda: recovery.run_slice(recovery_id, generation))
