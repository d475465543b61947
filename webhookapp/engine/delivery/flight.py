"""Sends in flight for one delivery job: how many run at once, and how their outcomes come back.

A worker process has ``WEBHOOK_WORKER_THREADS`` send threads, so that handlers that hang until
the timeout hold a thread each while other webhooks go on (docs/architecture.md, "Data flow"). Running all of them at
once would be slow, though: Python runs one thread at a time, and with fast handlers dozens of
runnable threads spend more time handing the interpreter to each other than sending. So only
``FAST_WINDOW`` sends may be *young* (started less than ``SLOW_AFTER`` seconds ago) at a time;
a send that has waited longer than that no longer counts, which opens the window for the next
one. Handlers that answer at once thus get one busy thread at a time (with no hand-offs between
threads), slow ones get all of them: up to ``FAST_WINDOW / SLOW_AFTER`` sends start per second.

The job keeps calls claimed and signed ahead of its threads (``READY_AHEAD``), and a send thread
that finishes takes the next one itself when the window allows; one whose send waited on its
handler waits up to ``LINGER_SLOW`` for the window or for the next call rather than leave it to
the job's next look. The job's own thread only claims, prepares and records. A call not started
within half the lease's margin of its claim is not sent: the job hands it back (:meth:`expired`),
so that no send outlives its lease. The job records in batches: outcomes are gathered for up to
``GATHER`` seconds, since every commit has a fixed cost. When the job hands over (its budget is
spent), sends still in flight record their own outcome when they end.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from webhookapp.core.times import utcnow
from webhookapp.engine.timing import FAST_WINDOW, GATHER, LINGER_SLOW, READY_AHEAD, SLOW_AFTER
from webhookapp.engine.transport.sender import Sender
from webhookapp.engine.types import Claim, Finished, Prepared, PreparedCall


class _Ready(NamedTuple):
    prepared: Prepared
    send_by: float  # monotonic: started later, the send could outlive its lease


class Flight:
    """The prepared calls of one job, the sends it has started, and their outcomes.

    ``hold``: seconds after its claim a call may still be started (half the lease's margin)."""

    def __init__(self, executor: ThreadPoolExecutor, sender: Sender, slots: int, hold: float = math.inf):
        self._executor = executor
        self._sender = sender
        self.slots = slots
        self.capacity = slots + int(slots * READY_AHEAD)  # sends and ready calls the job keeps
        self._hold = hold
        self.ready: deque[_Ready] = deque()  # claimed and signed, not yet started
        self._expired: list[Prepared] = []  # waited too long in ``ready``: to hand back
        self._started: dict[int, float] = {}  # ticket → monotonic start
        self._tickets = 0
        self._uncollected = 0  # sends started whose outcome the job has not collected
        self._parked = 0  # send threads waiting for the window or the next call
        self._closing = False  # handed over or withdrawn: parked threads go once nothing is ready
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._outcomes: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self._orphan_recorder: Callable[[list[Finished]], None] | None = None

    def __len__(self) -> int:
        """Sends started whose outcome has not been collected."""
        return self._uncollected

    def busy(self) -> int:
        """Sends running and calls waiting to start. Outcomes not yet collected do not count, so
        claiming never waits for the job's next batch of records."""
        with self._lock:
            return len(self._started) + len(self.ready)

    def _take(self, *, window: bool = True, parked: bool = False) -> tuple[int, Prepared] | None:
        """The next call to send, as a new ticket, if one is ready and (``window``) the window has
        room; the lock is held. A ``parked`` thread's own place among the threads is its to use."""
        now = time.monotonic()
        while self.ready and self.ready[0].send_by <= now:
            self._expired.append(self.ready.popleft().prepared)
        if not self.ready or len(self._started) + self._parked - parked >= self.slots:
            return None
        if window and not self._closing:
            young = sum(1 for started in self._started.values() if now - started < SLOW_AFTER)
            if young >= FAST_WINDOW:
                return None
        self._tickets += 1
        self._uncollected += 1
        self._started[self._tickets] = now
        return self._tickets, self.ready.popleft().prepared

    def add(self, claim: Claim, call: PreparedCall) -> None:
        """Line up a claimed, signed call and start it if the window has room."""
        waited = (utcnow() - claim.claimed_at).total_seconds()
        with self._lock:
            self.ready.append(_Ready(Prepared(claim, call), time.monotonic() - waited + self._hold))
        self.fill()

    def fill(self, everything: bool = False) -> None:
        """Start sends while the window has room (``everything``: all that are ready). Parked
        threads take as many ready calls as there are of them; new sends start the others."""
        while True:
            with self._lock:
                if self._parked:
                    self._changed.notify(len(self.ready))
                if len(self.ready) <= self._parked:
                    return
                taken = self._take(window=not everything)
            if taken is None:
                return
            self._executor.submit(self._run, *taken)

    def _run(self, ticket: int, prepared: Prepared) -> None:
        taken: tuple[int, Prepared] | None = (ticket, prepared)
        while taken is not None:
            ticket, prepared = taken
            trace = prepared.call.trace
            if trace is None:
                finished = Finished(prepared.claim, prepared.call, self._sender.send(prepared.call))
            else:
                trace.sending(prepared.call)
                finished = Finished(prepared.claim, prepared.call, self._sender.send(prepared.call))
                trace.answered(finished.result)
            with self._lock:
                recorder = self._orphan_recorder
                if recorder is None:
                    self._outcomes.put(finished)
            if recorder is not None:
                recorder([finished])
            taken = self._next(ticket)

    def _next(self, ticket: int) -> tuple[int, Prepared] | None:
        """End ``ticket`` and take the next call. After a send that waited on its handler, wait
        up to ``LINGER_SLOW`` for it: the other threads are likely waiting too, so the window
        opens within a millisecond, and the job lines up its next claim within its round."""
        with self._lock:
            began = self._started.pop(ticket, time.monotonic())
            taken = self._take()
            if taken is not None or self._closing or time.monotonic() - began < SLOW_AFTER:
                return taken
            until = time.monotonic() + LINGER_SLOW
            self._parked += 1
            try:
                while True:
                    now = time.monotonic()
                    if now >= until or (self._closing and not self.ready):
                        return None
                    room = self._room_in(now) if self.ready else None
                    self._changed.wait(until - now if room is None else min(until - now, room))
                    taken = self._take(parked=True)
                    if taken is not None:
                        return taken
            finally:
                self._parked -= 1

    def _room_in(self, now: float) -> float | None:
        """Seconds until the window opens by itself (a young send turns slow), None if it is
        open; the lock is held."""
        young = [started + SLOW_AFTER - now for started in self._started.values() if now - started < SLOW_AFTER]
        return max(min(young), 0.0005) if young else None

    def until_room(self, limit: float) -> float:
        """Seconds until the job should look at the ready calls again, at most ``limit``: when
        the window opens by itself, unless parked threads take every ready call. With every
        thread busy, the thread whose send ends takes the next call itself."""
        with self._lock:
            if len(self.ready) <= self._parked or len(self._started) + self._parked >= self.slots:
                return limit
            room = self._room_in(time.monotonic())
        return limit if room is None else min(limit, room)

    def collect(self, timeout: float) -> list[Finished]:
        """Outcomes: wait up to ``timeout`` for the first, then ``GATHER`` seconds for more."""
        try:
            first = self._outcomes.get(timeout=timeout)
        except queue.Empty:
            return []
        if self._started:
            time.sleep(GATHER)  # a sleep, not a wait on the queue: one wake-up per batch
        return self._drain_outcomes([first])

    def _drain_outcomes(self, finished: list[Finished]) -> list[Finished]:
        while True:
            try:
                finished.append(self._outcomes.get_nowait())
            except queue.Empty:
                with self._lock:
                    self._uncollected -= len(finished)
                return finished

    def expired(self) -> list[Claim]:
        """The claims of calls that waited too long to start (``hold``): the job hands them back."""
        with self._lock:
            now = time.monotonic()
            while self.ready and self.ready[0].send_by <= now:
                self._expired.append(self.ready.popleft().prepared)
            expired, self._expired = self._expired, []
        return [prepared.claim for prepared in expired]

    def withdraw(self) -> list[Prepared]:
        """Take back the calls not started yet: a stopping worker hands their triggers back."""
        with self._lock:
            withdrawn = self._expired + [waiting.prepared for waiting in self.ready]
            self.ready.clear()
            self._expired = []
            self._closing = True
            self._changed.notify_all()
        return withdrawn

    def surplus(self) -> list[Claim]:
        """Take back the ready calls beyond the threads not sending (the newest claims): a job
        handing over hands them back rather than queue them behind sends that may hang."""
        with self._lock:
            free = max(self.slots - len(self._started), 0)
            surplus = [self.ready.pop().prepared.claim for _ in range(max(len(self.ready) - free, 0))]
        return surplus + self.expired()

    def hand_over(self, recorder: Callable[[list[Finished]], None]) -> list[Finished]:
        """Start all that is ready; from now on sends record their own outcome with ``recorder``.

        Returns the outcomes already in, for the caller to record.
        """
        with self._lock:
            self._closing = True
        self.fill(everything=True)
        with self._lock:
            self._orphan_recorder = recorder
        return self._drain_outcomes([])
