"""Timestamps along the idle path (ingest -> wake -> claim -> sign -> send), for ``bench.profile``.

``python -m bench.timeline`` is the worker (``python -m workers``) with its delivery path's
functions wrapped to write ``time.time()`` at their start and end to the file named by
``BENCH_TIMELINE``; :func:`instrument_ingest` does the same for the ingest side in the
benchmark's own process. The wrappers change nothing else and cost a few microseconds per call.
:func:`spans` joins both files and the handler's arrival times into one timeline per event.
"""

from __future__ import annotations

import functools
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Row = tuple[str, float, float, int]  # label, start, end, count


class Log:
    """Lines of ``label start end n``, appended under a lock; off until :attr:`on` is set."""

    def __init__(self, path: str | Path):
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
        self._lock = threading.Lock()
        self.on = True

    def write(self, label: str, start: float, end: float, n: int = 0) -> None:
        if self.on:
            with self._lock:
                self._file.write(f"{label} {start:.6f} {end:.6f} {n}\n")


def wrap(
    log: Log, owner: Any, name: str, label: str, count: Callable[[Any, tuple[Any, ...]], int] | None = None
) -> None:
    """Replace ``owner.name`` by a wrapper that logs its start and end (and ``count(result, args)``)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        result = original(*args, **kwargs)
        log.write(label, start, time.time(), count(result, args) if count else 0)
        return result

    setattr(owner, name, timed)


def instrument_worker(path: str) -> Log:
    """The worker's side: doorbell wait returns, claim, signing, send, recording (and the driver's
    ``execute`` calls, to tell the statements' round trips from the Python around them). Off until
    the process gets SIGUSR2 (:func:`start_worker_log`), so that the bursts run unwrapped."""
    import signal

    import psycopg

    from webhookapp.engine import delivery, dispatch, triggers
    from webhookapp.engine.delivery import recording
    from webhookapp.engine.transport.sender import Sender

    log = Log(path)
    log.on = False
    signal.signal(signal.SIGUSR2, lambda signum, frame: setattr(log, "on", True))
    wrap(log, psycopg.Cursor, "execute", "execute")
    wrap(log, dispatch, "await_doorbell", "doorbell", lambda rung, _: int(rung))
    wrap(log, dispatch, "woken", "job")
    wrap(log, triggers, "claim_due", "claim", lambda claims, _: len(claims))
    wrap(log, delivery, "build_call", "sign")
    wrap(log, Sender, "send", "send")
    wrap(log, recording, "record", "record", lambda _, args: len(args[0]))
    return log


def start_worker_log(pid: int) -> None:
    """Turn on the timestamps of the worker ``pid`` started as ``python -m bench.timeline``."""
    import signal

    os.kill(pid, signal.SIGUSR2)


def instrument_ingest(path: str) -> Log:
    """The event API's side, in the calling process: the ingest call, its statement, the wake
    (with the driver's ``execute`` calls, and RQ's ``enqueue`` when the wake queues a job)."""
    import psycopg
    import rq

    from webhookapp.engine import dispatch, ingest
    from webhookapp.engine.ingest import postgresql

    log = Log(path)
    log.on = False
    wrap(log, psycopg.Cursor, "execute", "execute")
    wrap(log, rq.Queue, "enqueue", "enqueue")
    wrap(log, ingest, "ingest_as", "ingest")
    wrap(log, postgresql, "_run_once", "statement")
    wrap(log, dispatch, "wake", "wake")
    return log


def read(path: str | Path) -> list[Row]:
    """The rows of a log written by :class:`Log`."""
    rows = []
    for line in Path(path).read_text().splitlines():
        label, start, end, n = line.split()
        rows.append((label, float(start), float(end), int(n)))
    return rows


POINTS = [
    ("statement starts", "statement", 1),
    ("statement returns (committed)", "statement", 2),
    ("wake: Redis script starts", "wake", 1),
    ("wake returns", "wake", 2),
    ("ingest call returns", "ingest", 2),
    ("worker: doorbell wait returns", "doorbell", 2),
    ("worker: claim starts", "claim", 1),
    ("worker: claim returns", "claim", 2),
    ("worker: JWT signed, call built", "sign", 2),
    ("send thread: send starts", "send", 1),
    ("handler receives", "arrival", 2),
    ("send thread: response read", "send", 2),
    ("worker: record starts", "record", 1),
    ("worker: record returns (committed)", "record", 2),
]


def _windows(rows: list[Row]) -> Iterator[tuple[float, list[Row]]]:
    """Each event's start and the rows that ended before the next event's start."""
    starts = sorted(r[1] for r in rows if r[0] == "ingest")
    for index, t0 in enumerate(starts):
        until = starts[index + 1] if index + 1 < len(starts) else float("inf")
        yield t0, [r for r in rows if t0 <= r[2] < until]


def spans(ingest_rows: list[Row], worker_rows: list[Row], arrivals: list[float]) -> list[tuple[str, float, float]]:
    """Per point of :data:`POINTS`: its median time after the ingest call started, and the median
    of its step from the point before (ms), over the events whose every point was found. Prints
    how much of the statement, the claim and the record was the driver's ``execute``."""
    rows = sorted([*ingest_rows, *worker_rows, *(("arrival", t, t, 0) for t in arrivals)], key=lambda r: r[2])
    per_event: list[list[float]] = []
    events = 0
    for t0, window in _windows(rows):
        events += 1
        useful = [r for r in window if not (r[0] in ("claim", "record", "doorbell") and r[3] == 0)]
        times = [next((float(r[which]) for r in useful if r[0] == label), None) for _, label, which in POINTS]
        if all(t is not None for t in times):
            per_event.append([(t - t0) * 1000 for t in times if t is not None])
    result = []
    for i, (name, _, _) in enumerate(POINTS):
        at = [event[i] for event in per_event]
        step = [event[i] - (event[i - 1] if i else 0.0) for event in per_event]
        result.append((name, statistics.median(at), statistics.median(step)))
    print(f"(timeline: {len(per_event)} of {events} events had every point)")
    _inside_execute(rows)
    return result


def _inside_execute(rows: list[Row]) -> None:
    inside: dict[str, list[tuple[float, float]]] = {label: [] for label in ("statement", "claim", "record")}
    enqueued = events = 0
    for _, window in _windows(rows):
        events += 1
        enqueued += any(r[0] == "enqueue" for r in window)
        for label, pairs in inside.items():
            outer = next((r for r in window if r[0] == label and (label == "statement" or r[3])), None)
            if outer is not None:
                calls = [r for r in window if r[0] == "execute" and outer[1] <= r[1] and r[2] <= outer[2]]
                pairs.append((sum(r[2] - r[1] for r in calls) * 1000, (outer[2] - outer[1]) * 1000))
    for label, pairs in inside.items():
        if pairs:
            print(
                f"  {label}: {statistics.median(p[1] for p in pairs):.2f} ms, of which the driver's execute "
                f"{statistics.median(p[0] for p in pairs):.2f} ms (medians of {len(pairs)})"
            )
    print(f"  {enqueued} of {events} wake-ups queued an RQ job")


if __name__ == "__main__":
    instrument_worker(os.environ["BENCH_TIMELINE"])
    from workers.__main__ import main

    main()
