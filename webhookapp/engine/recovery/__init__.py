"""Recover (docs/architecture.md, "Recover"): a webhook's failed triggers of a time range, sent
once more as Redeliver sends one (no event counted, no statistics, the retry schedule left
alone), oldest first, at most ``WEBHOOK_RECOVER_RATE`` requests per second.

The workers run a recovery a slice at a time: an RQ job (:func:`run_slice`) takes the slice by
moving the recovery's ``generation`` on, reads the attempts in short statements
(:mod:`.selection`), sends for at most ``RECOVER_SLICE`` seconds and queues the next slice when
the rate allows it. Before each request the slice renews its lease, if it still holds it
(:func:`_renew`), for as long as the request may take and a margin; each request sent is
committed with the cursor after it. So a killed worker resends at most the one it had in
flight: the sweeper (:func:`revive`) queues a new job once the slice's lease has run out, it
resumes from the cursor, and the old slice, were it only slow, sends nothing more. No
transaction outlives one request, and the worker is free for deliveries between slices.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta
from functools import partial

from flask import current_app
from sqlalchemy import select, update

from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, outcomes, runtime, signing, tracing
from webhookapp.engine.reconnect import retrying
from webhookapp.engine.recovery import selection
from webhookapp.engine.timing import RECOVER_LEASE_MARGIN, RECOVER_READ, RECOVER_REVIVE_AFTER, RECOVER_SLICE
from webhookapp.engine.types import AttemptResult, PreparedCall, snapshot
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db
from webhookapp.models import Recovery, Webhook
from webhookapp.models.recovery import CANCELLED, FINISHED, RUNNING

log = logging.getLogger(__name__)


def lease_seconds() -> float:
    """How long a slice may go without a word before the sweeper takes it for lost: the longest
    request plus a margin."""
    return float(current_app.config["WEBHOOK_VALIDATION_TIMEOUT"]) + RECOVER_LEASE_MARGIN


def rate() -> float:
    """``WEBHOOK_RECOVER_RATE``: requests per second, per recovery."""
    return max(float(current_app.config["WEBHOOK_RECOVER_RATE"]), 0.001)


def _claim(recovery_id: int, generation: int, now: datetime) -> bool:
    """Take the slice of ``generation`` if it is still to run and due; commits."""
    lease = timedelta(seconds=lease_seconds())
    taken = db.session.execute(
        update(Recovery)
        .where(
            Recovery.id == recovery_id,
            Recovery.generation == generation,
            Recovery.state == RUNNING,
            Recovery.next_at <= now,
        )
        # next_at moves with the lease, so that no one else takes the slice while it runs.
        .values(generation=generation + 1, lease_until=now + lease, next_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return rowcount(taken) == 1


def _stop(recovery_id: int, generation: int, state: str, note: str | None = None) -> None:
    """End a running recovery as ``state`` (the slice of ``generation`` ends it); commits."""
    db.session.execute(
        update(Recovery)
        .where(Recovery.id == recovery_id, Recovery.generation == generation, Recovery.state == RUNNING)
        .values(state=state, note=note, lease_until=None, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _progress(recovery_id: int, generation: int, at: selection.Position, sent: int = 0, succeeded: int = 0) -> bool:
    """Move the cursor to ``at`` and count what was sent, in the caller's transaction, and renew
    the lease; False when the slice is no longer this job's."""
    moved = db.session.execute(
        update(Recovery)
        .where(Recovery.id == recovery_id, Recovery.generation == generation)
        .values(
            cursor_started_at=at.started_at,
            cursor_attempt_id=at.attempt_id,
            sent=Recovery.sent + sent,
            succeeded=Recovery.succeeded + succeeded,
            lease_until=utcnow() + timedelta(seconds=lease_seconds()),
            next_at=utcnow() + timedelta(seconds=lease_seconds()),
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(moved) == 1


def _renew(recovery_id: int, generation: int) -> bool:
    """Before a request: renew the slice's lease if the slice is still this job's, its lease has
    not run out and the recovery still runs (not cancelled); commits. The new lease covers the
    request (``WEBHOOK_VALIDATION_TIMEOUT`` at most) and its recording, so the sweeper does not
    give the slice to another worker while the request is out. False: send nothing more."""
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds())
    renewed = db.session.execute(
        update(Recovery)
        .where(
            Recovery.id == recovery_id,
            Recovery.generation == generation,
            Recovery.state == RUNNING,
            Recovery.lease_until > now,  # run out: the sweeper may have revived it already
        )
        .values(lease_until=lease, next_at=lease)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return rowcount(renewed) == 1


def _record(
    recovery_id: int,
    generation: int,
    webhook_id: str,
    candidate: selection.Candidate,
    call: PreparedCall,
    result: AttemptResult,
) -> tuple[int, bool] | None:
    """Record the request sent again for ``candidate`` and move the cursor past it, in one commit;
    None when the webhook is gone (nothing recorded), else the new attempt's id and whether the
    slice is still this job's."""
    attempt = outcomes.record_redelivery(
        webhook_id, candidate.number, call, result, "trigger", redelivery_of=candidate.attempt_id
    )
    if attempt is None:
        return None
    owned = _progress(recovery_id, generation, candidate.position, 1, int(result.success))
    # Committed even if the slice was taken meanwhile (its worker stalled past the lease): the
    # request was made, and the slice's new owner may have sent it too, as one in flight.
    db.session.commit()
    return attempt.id, owned


def _open(recovery_id: int, generation: int) -> tuple[Recovery, Webhook] | None:
    """The recovery and its webhook for a slice; None (the recovery ended) when the webhook was
    deleted or disabled meanwhile: disabled webhooks send nothing."""
    recovery = db.session.get(Recovery, recovery_id)
    if recovery is None:
        return None
    webhook = db.session.get(Webhook, recovery.webhook_id)
    if webhook is None or not webhook.active:
        why = "The webhook was deleted." if webhook is None else "The webhook was disabled."
        _stop(recovery_id, generation, CANCELLED, why)
        return None
    return recovery, webhook


def run_slice(recovery_id: int, generation: int, queue_next: bool = True) -> int:
    """Run one slice of a recovery, if ``generation`` is still its next; returns the requests
    sent. A job of an older generation, or one come early, does nothing. ``queue_next``: queue
    an RQ job for the next slice (the workers' recovery thread finds it by itself)."""
    started, clock = utcnow(), time.monotonic()
    if not _claim(recovery_id, generation, started):
        return 0
    generation += 1
    opened = _open(recovery_id, generation)
    if opened is None:
        return 0
    recovery, webhook = opened
    settings, api_url, in_retry = snapshot(webhook), webhook.last_event_api_url, selection.retrying_number(webhook)
    until = recovery.until
    position = selection.Position(recovery.cursor_started_at, recovery.cursor_attempt_id)
    allowed = max(1, math.floor(rate() * RECOVER_SLICE))
    db.session.commit()
    sent = 0
    while sent < allowed and time.monotonic() - clock < RECOVER_SLICE:
        batch = selection.read(settings.id, in_retry, position, until, RECOVER_READ)
        db.session.commit()
        for candidate in batch.candidates:
            if sent >= allowed or time.monotonic() - clock >= RECOVER_SLICE:
                break  # the rest of the batch is read again by the next slice
            if not _renew(recovery_id, generation):
                return sent  # cancelled, or the sweeper took the slice for lost: its new owner goes on
            # As Redeliver sends: the webhook's settings now, a fresh JWT, a trigger's payload.
            call = signing.build_call(settings, triggered_at=utcnow(), api_url=api_url)
            with tracing.DirectTrace(
                runtime.current().tracer(),
                "recover webhook",
                settings.id,
                attributes={tracing.RECOVERY_ID: recovery_id, tracing.REDELIVERY_OF: candidate.attempt_id},
            ) as traced:
                traced.sending(call)
                result = runtime.current().validation_sender().send(call)
                traced.answered(result)
                sent += 1
                # The request was made: a dropped connection must not lose its record (and have it
                # sent again from the cursor), so the recording is tried again on a fresh one.
                recorded = retrying(partial(_record, recovery_id, generation, settings.id, candidate, call, result))
                traced.recorded(None if recorded is None else recorded[0])
            owned = None if recorded is None else recorded[1]
            if owned is None:
                _stop(recovery_id, generation, CANCELLED, "The webhook was deleted.")
                return sent
            if not owned:
                return sent
            position = candidate.position
        else:
            if batch.exhausted:
                _stop(recovery_id, generation, FINISHED)
                return sent
            if batch.examined is not None and batch.examined != position:
                position = batch.examined  # past attempts with nothing to send
                _progress(recovery_id, generation, position)
                db.session.commit()
    _next_slice(recovery_id, generation, started + timedelta(seconds=sent / rate()), queue_next)
    return sent


def _next_slice(recovery_id: int, generation: int, due: datetime, queue_next: bool) -> None:
    """Queue the slice after this one at ``due`` (at once if that has passed); the lease covers
    the wait, and the sweeper queues another should this job be lost."""
    now = utcnow()
    due = max(due, now)
    db.session.execute(
        update(Recovery)
        .where(Recovery.id == recovery_id, Recovery.generation == generation, Recovery.state == RUNNING)
        .values(next_at=due, lease_until=due + timedelta(seconds=RECOVER_REVIVE_AFTER))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if queue_next:
        dispatch.recover(recovery_id, generation, due if due > now + timedelta(milliseconds=50) else None)


def run_due() -> int:
    """Run a slice of each running recovery that is due, oldest due first; returns the requests
    sent. The workers' recovery thread calls it a few times a second: unlike an RQ job, it does
    not wait behind delivery jobs, which keep a busy worker for up to ``DRAIN_BUDGET``."""
    due = db.session.execute(
        select(Recovery.id, Recovery.generation)
        .where(Recovery.state == RUNNING, Recovery.next_at <= utcnow())
        .order_by(Recovery.next_at)
        .limit(10)
    ).all()
    db.session.commit()
    return sum(run_slice(recovery_id, generation, queue_next=False) for recovery_id, generation in due)


def start(recovery: Recovery) -> None:
    """Queue the first slice of a recovery just committed."""
    dispatch.recover(recovery.id, recovery.generation)


def revive() -> int:
    """Queue a job for each running recovery whose slice (or queued job) is lost: its lease ran
    out. Returns how many; runs with the sweeper, every second."""
    now = utcnow()
    lost = db.session.execute(
        select(Recovery.id, Recovery.generation)
        .where(Recovery.state == RUNNING, Recovery.lease_until < now)
        .order_by(Recovery.lease_until)
        .limit(100)
    ).all()
    revived = []
    for recovery_id, generation in lost:
        # Moved on so that the next sweeps leave it to this job for a while.
        renewed = db.session.execute(
            update(Recovery)
            .where(Recovery.id == recovery_id, Recovery.generation == generation, Recovery.lease_until < now)
            .values(next_at=now, lease_until=now + timedelta(seconds=RECOVER_REVIVE_AFTER))
            .execution_options(synchronize_session=False)
        )
        if rowcount(renewed):
            revived.append((recovery_id, generation))
    db.session.commit()
    for recovery_id, generation in revived:
        log.info("Resuming recovery %s.", recovery_id)
        dispatch.recover(recovery_id, generation)
    return len(revived)
