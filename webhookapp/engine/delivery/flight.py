"""Sends in flight for one delivery job: how many run at once, and how their outcomes come back.

A worker process has ``WEBHOOK_WORKER_THREADS`` send threads, so that handlers that hang until
the timeout hold a thread each while other webhooks go on (docs/architecture.md, "Data flow"). Running all of them at
once would be slow, though: Python runs one thread at a time, and with fast handlers dozens of
runnable threads spend more time handing the interpreter to each other than sending. So only
``FAST_WINDOW`` sends may be *young* (started less than ``SLOW_AFTER`` seconds ago) at a time;
a send that has waited longer than that no longer counts, which opens the window for the next
one. Handlers that answer at once thus get one busy thread at a time (with no hand-offs between
threads), slow ones get all of them: up to ``FAST_WINDOW / SLOW_AFTER`` sends start per second.

A send thread that finishes takes the next prepared call itself when the window allows, so the
job's own thread only claims, prepares and records. It records in batches: outcomes are
gathered for up to ``GATHER`` seconds, since every commit has a fixed cost. When the job hands
over (its budget is spent), sends still in flight record their own outcome when they end.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from webhookapp.engine.timing import FAST_WINDOW, GATHER, SLOW_AFTER
from webhookapp.engine.transport.sender import Sender
from webhookapp.engine.types import Claim, Finished, Prepared, PreparedCall


class Flight:
    """The prepared calls of one job, the sends it has started, and their outcomes."""

    def __init__(self, executor: ThreadPoolExecutor, sender: Sender, slots: int):
        self._executor = executor
        self._sender = sender
        self.slots = slots
        self.ready: deque[Prepared] = deque()  # claimed and signed, not yet started
        self._started: dict[int, float] = {}  # ticket → monotonic start
        self._tickets = 0
        self._uncollected = 0  # sends started whose outcome the job has not collected
        self._lock = threading.Lock()
        self._outcomes: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self._orphan_recorder: Callable[[list[Finished]], None] | None = None

    def __len__(self) -> int:
        """Sends started whose outcome has not been collected."""
        return self._uncollected

    def busy(self) -> int:
        """Sends running and calls waiting to start: the threads they need. Outcomes not yet
        collected do not count, so claiming never waits for the job's next batch of records."""
        with self._lock:
            return len(self._started) + len(self.ready)

    def _take(self, ticket: int | None = None, *, window: bool = True) -> tuple[int, Prepared] | None:
        """The next call to send, as a new ticket, if one is ready and (``window``) the window has
        room; ``ticket`` ends first."""
        with self._lock:
            if ticket is not None:
                self._started.pop(ticket, None)
            if not self.ready:
                return None
            now = time.monotonic()
            if window:
                young = sum(1 for started in self._started.values() if now - started < SLOW_AFTER)
                if young >= FAST_WINDOW or len(self._started) >= self.slots:
                    return None
            self._tickets += 1
            self._uncollected += 1
            self._started[self._tickets] = now
            return self._tickets, self.ready.popleft()

    def add(self, claim: Claim, call: PreparedCall) -> None:
        """Line up a claimed, signed call and start it if the window has room."""
        self.ready.append(Prepared(claim, call))
        self.fill()

    def fill(self, everything: bool = False) -> None:
        """Start sends while the window has room (``everything``: all that are ready)."""
        while (taken := self._take(window=not everything)) is not None:
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
            taken = self._take(ticket)

    def until_room(self, limit: float) -> float:
        """Seconds until the window opens by itself (a young send turns slow), at most ``limit``."""
        now = time.monotonic()
        with self._lock:
            young = [started + SLOW_AFTER - now for started in self._started.values() if now - started < SLOW_AFTER]
        return max(min([limit, *young]), 0.0005)

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

    def withdraw(self) -> list[Prepared]:
        """Take back the calls not started yet: a stopping worker hands their triggers back."""
        with self._lock:
            withdrawn = list(self.ready)
            self.ready.clear()
        return withdrawn

    def hand_over(self, recorder: Callable[[list[Finished]], None]) -> list[Finished]:
        """Start all that is ready; from now on sends record their own outcome with ``recorder``.

        Returns the outcomes already in, for the caller to record.
        """
        self.fill(everything=True)
        with self._lock:
            self._orphan_recorder = recorder
        return self._drain_outcomes([])
