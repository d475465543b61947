"""The delivery loop a worker job runs: claim due triggers, send them concurrently, record outcomes
(docs/architecture.md, "Data flow").

Sends run on a thread pool of ``WEBHOOK_WORKER_THREADS`` per worker process, started as the
window of :mod:`.flight` allows, from calls claimed and signed ahead of the threads, so a handler
that hangs until the delivery timeout holds one thread while every other webhook keeps going.
Database work stays on the job's own thread. The loop keeps taking new work for
``DRAIN_BUDGET`` seconds, waits for short retries due within ``LINGER`` seconds and for the
doorbell until ``WEBHOOK_IDLE_WAIT`` after its last send, then returns; anything later is
scheduled with RQ and watched by the sweeper. A database that drops its connections or goes away
for a while delays the loop, never kills it: outcomes in hand are kept until it takes them
(:mod:`.recording`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time

from flask import current_app
from opentelemetry.trace import SpanContext, Tracer

from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, recovery, signing, tracing, triggers
from webhookapp.engine.delivery import recording
from webhookapp.engine.delivery.flight import Flight
from webhookapp.engine.reconnect import or_else
from webhookapp.engine.runtime import Runtime
from webhookapp.engine.timing import DRAIN_BUDGET, LINGER, POLL, RECLAIM_EVERY
from webhookapp.engine.types import AttemptResult, Claim, Finished, PreparedCall

log = logging.getLogger(__name__)


def drain(runtime: Runtime, webhook_ids: list[str] | None = None, budget: float = DRAIN_BUDGET) -> int:
    """Deliver what is due, ``webhook_ids`` first; returns the number of attempts made.

    Sends run on the ``runtime``'s thread pool, and the loop ends early once the runtime is told
    to stop (:meth:`.Runtime.request_stop`). Claims are taken in batches, up to the thread count
    and half as many again ahead (:data:`.READY_AHEAD`), signed at once and started as the window
    of :mod:`.flight` allows; calls that waited too long for a thread are handed back. At the end
    of ``budget`` the job starts what its free threads can take, hands back the rest and returns
    at once: sends still in flight (a hung handler) record their own outcome when they end, so the
    worker is free for its next job.
    """
    pool = runtime.delivery()
    slots = pool.threads
    flight = Flight(pool.executor, pool.sender, slots, hold=triggers.lease_margin() / 2)
    stopping = runtime.stopping
    tracer = runtime.tracer()
    if webhook_ids:
        # The announced ones go out first.
        _prepare(flight, or_else(functools.partial(triggers.claim_due, flight.capacity, webhook_ids), []), tracer)
        flight.fill()
    dispatch.woken()
    deadline = time.monotonic() + budget
    next_reclaim = time.monotonic() + RECLAIM_EVERY
    idle_wait = float(current_app.config["WEBHOOK_IDLE_WAIT"])
    idle_until = time.monotonic() + idle_wait
    attempts = 0
    unrecorded: list[Finished] = []  # outcomes the database could not take yet
    while True:
        if stopping.is_set():
            return attempts + _wind_down(flight, unrecorded)
        if time.monotonic() >= deadline:
            _hand_back(flight.surplus())
            recording.record_patiently(unrecorded + flight.hand_over(recording.recorder()))
            return attempts
        busy = flight.busy()
        # Claims are batched: refill when idle or when a quarter of the threads' worth is missing.
        if busy == 0 or flight.capacity - busy >= max(slots // 4, 1):
            _prepare(flight, or_else(functools.partial(triggers.claim_due, flight.capacity - busy), []), tracer)
        flight.fill()
        _hand_back(flight.expired())
        if time.monotonic() >= next_reclaim:  # after starting the sends, which it must not delay
            or_else(triggers.reclaim_expired, 0)
            next_reclaim = time.monotonic() + RECLAIM_EVERY
        if flight or flight.ready or unrecorded:  # ready calls a parked thread is about to take
            idle_until = time.monotonic() + idle_wait
        elif _linger(stopping, deadline, idle_until):
            continue
        else:
            return attempts
        finished = flight.collect(flight.until_room(POLL) if flight.ready else POLL)
        attempts += len(finished)
        unrecorded = recording.record(unrecorded + finished)


def build_call(claim: Claim) -> PreparedCall:
    """The signed request of a claimed attempt (:func:`.signing.build_call`)."""
    return signing.build_call(
        claim.webhook, triggered_at=claim.claimed_at, api_url=claim.api_url, message_id=claim.message_id
    )


def _prepare(flight: Flight, claims: list[Claim], tracer: Tracer | None = None) -> None:
    """Sign the claimed attempts and line them up in the flight; the first goes out while the
    rest are being signed. With a ``tracer``, each delivery is a span of its trigger's trace
    (:mod:`.tracing`), linking the other events it carries."""
    for claim in claims:
        try:
            call = build_call(claim)
        except Exception as exc:  # a webhook that cannot be signed fails alone
            log.exception("Could not prepare the request of %s", claim.webhook.id,
                          extra={"webhook_id": claim.webhook.id, "attempt": claim.attempt})  # fmt: skip
            unsent = Finished(claim, _unsent_call(claim), _failed(f"Could not prepare the request: {exc}"))
            recording.record_patiently([unsent])
        else:
            if tracer is not None:
                links: list[SpanContext] = or_else(functools.partial(tracing.carried, claim), [])
                call.trace = tracing.DeliveryTrace.start(tracer, claim, links)
            flight.add(claim, call)


def _unsent_call(claim: Claim) -> PreparedCall:
    webhook = claim.webhook
    return PreparedCall(method=webhook.http_method, url=webhook.external_url, headers={}, body=None, logged_headers={})


def _failed(error: str) -> AttemptResult:
    return AttemptResult(started_at=utcnow(), duration_ms=0.0, success=False, error=error)


def _hand_back(claims: list[Claim]) -> None:
    """Give back claims that will not be sent in time: their triggers are due again at once. If
    the database does not take them, their leases run out and the sweeper does."""
    if claims:
        handed_back = or_else(functools.partial(triggers.hand_back, claims), 0)
        log.info("Handed back %d of %d claimed triggers not started in time.", handed_back, len(claims))


def _wind_down(flight: Flight, unrecorded: list[Finished]) -> int:
    """Stop: hand back the claimed calls not started, wait for the sends in flight (each ends
    within the delivery timeout) and record every outcome; returns the attempts recorded."""
    withdrawn = flight.withdraw()
    handed_back = or_else(functools.partial(triggers.hand_back, [prepared.claim for prepared in withdrawn]), 0)
    if withdrawn:
        # If the database did not take them back, their leases run out and the sweeper does.
        log.info("Stopping: handed back %d of %d triggers not yet sent.", handed_back, len(withdrawn))
    attempts = 0
    while len(flight):
        finished = flight.collect(POLL * 25)
        attempts += len(finished)
        unrecorded = recording.record(unrecorded + finished)
    recording.record_patiently(unrecorded)
    return attempts


def _linger(stopping: threading.Event, deadline: float, idle_until: float) -> bool:
    """Wait for more work; False when there is none to wait for.

    A retry due within LINGER seconds is slept for; otherwise the job waits on the doorbell until
    ``idle_until`` (``WEBHOOK_IDLE_WAIT`` after its last send), so that the next event of a quiet
    system is claimed at once instead of through a new job.
    """
    if stopping.is_set():
        return False
    due = or_else(triggers.next_due_at, None)
    if due is not None:
        wait_for = (due - utcnow()).total_seconds()
        if wait_for <= LINGER and time.monotonic() + wait_for <= deadline:
            time.sleep(max(min(wait_for, POLL * 5), 0))
            return True
    remaining = min(idle_until, deadline) - time.monotonic()
    if remaining <= 0:
        return False
    if due is not None:  # a retry due soon is not missed while waiting
        remaining = min(remaining, max((due - utcnow()).total_seconds(), 0.001))
    return dispatch.await_doorbell(remaining) or time.monotonic() < min(idle_until, deadline)


def sweep() -> bool:
    """The periodic safety net: reclaim dead workers' leases, resume recoveries whose worker died
    (:func:`.recovery.revive`), wake workers if anything is due.

    Returns True when something was due. Runs every second from the worker's cron scheduler;
    while the database is unreachable it does nothing (the next sweep will).
    """
    or_else(triggers.reclaim_expired, 0)
    or_else(recovery.revive, 0)
    due = or_else(triggers.next_due_at, None)
    if due is not None and due <= utcnow():
        dispatch.wake()
        return True
    return False
