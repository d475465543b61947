"""Wake-up benchmark: what a step of the idle path costs right after its process slept, against
the same step run back to back.

    .venv/bin/python -m bench.wakeups [--gap 0.05] [--samples 40]

An idle event crosses several processes and threads that were asleep (docs/performance.md, "What
a wake-up costs"): the worker's job thread, PostgreSQL's backends, a send thread, the handler.
This prints, as medians of ``--samples`` runs, in microseconds:

* the same code run warm (back to back) and cold (each run after a ``--gap`` s sleep, the queue
  gap of ``bench.delivery``'s idle events): a no-op, ``time.sleep(0)``, ``json.dumps`` of a
  delivery's payload, an HMAC-SHA256, PyJWT's HS256 encoding, and ``signing.sign``;
* a thread woken through a ``threading.Event`` (as a send thread is handed its call), after the
  waiting thread slept ``--gap`` s and after 1 ms;
* a round trip to another process over a socket pair, after ``--gap`` s and back to back.

No database, no Redis, no app: the figures are the machine's and Python's.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import jwt

from bench.common import print_table, run_main

PAYLOAD = {
    "webhook_id": "WH-000-000-001", "webhook_name": "Orders", "object_class": "fulfillment_request",
    "account_id": "VA-000-000", "product_id": "PRD-000-000-000", "api_url": "https://api.example.com/public/v1",
    "triggered_at": "2026-12-07T06:00:00.000000+00:00", "last_success_at": None, "last_failure_at": None,
    "processing_timeout": 10, "data": {},
}  # fmt: skip
SECRET = "s" * 43


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap", type=float, default=0.05, help="seconds slept before each cold run (0.05)")
    parser.add_argument("--samples", type=int, default=40, help="runs per figure; the median is printed (40)")
    return parser.parse_args(argv)


def microseconds(run: Callable[[], object], samples: int, gap: float) -> float:
    """The median time of ``run``, each run after ``gap`` seconds of sleep (0: back to back)."""
    times = []
    for _ in range(samples):
        if gap:
            time.sleep(gap)
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def thread_wake(samples: int, gap: float) -> float:
    """Median microseconds from ``Event.set`` until the thread waiting on it runs, after ``gap`` s."""
    times = []
    for _ in range(samples):
        event, woke = threading.Event(), []

        def wait(event: threading.Event = event, woke: list[float] = woke) -> None:
            event.wait()
            woke.append(time.perf_counter())

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(gap)
        start = time.perf_counter()
        event.set()
        waiter.join()
        times.append((woke[0] - start) * 1e6)
    return statistics.median(times)


@contextlib.contextmanager
def echo_process() -> Iterator[socket.socket]:
    """A child process echoing each byte sent on the returned socket; it exits when it is closed."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: echo until the parent closes its end
        ours.close()
        while data := theirs.recv(16):
            theirs.sendall(data)
        os._exit(0)
    theirs.close()
    try:
        yield ours
    finally:
        ours.close()
        os.waitpid(pid, 0)


def run(args: argparse.Namespace) -> int:
    from webhookapp.engine import signing

    def sign() -> object:
        return signing.sign(PAYLOAD, SECRET, triggered_at=datetime.now(UTC), processing_timeout=10)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("no-op", lambda: None),
        ("time.sleep(0)", lambda: time.sleep(0)),
        ("json.dumps of a payload", lambda: json.dumps(PAYLOAD, separators=(",", ":"))),
        ("HMAC-SHA256 of 400 bytes", lambda: hmac.new(SECRET.encode(), b"x" * 400, hashlib.sha256).digest()),
        ("PyJWT HS256 encode", lambda: jwt.encode(PAYLOAD, SECRET, algorithm="HS256")),
        ("signing.sign (the engine's)", sign),
    ]
    rows = []
    for name, step in steps:
        warm, cold = microseconds(step, args.samples, 0), microseconds(step, args.samples, args.gap)
        rows.append([name, f"{warm:.1f}", f"{cold:.1f}", f"{cold / warm:.0f}×"])
    rows.append(["a thread woken by an Event", f"{thread_wake(args.samples, 0.001):.1f} (1 ms)",
                 f"{thread_wake(args.samples, args.gap):.1f}", ""])  # fmt: skip
    with echo_process() as peer:

        def round_trip() -> object:
            peer.sendall(b"x")
            return peer.recv(16)

        warm, cold = microseconds(round_trip, args.samples, 0), microseconds(round_trip, args.samples, args.gap)
        rows.append(["a round trip to another process", f"{warm:.1f}", f"{cold:.1f}", f"{cold / warm:.0f}×"])
    print_table(
        f"Microseconds, medians of {args.samples}: warm (back to back) and cold (after {args.gap:g} s asleep)",
        ["step", "warm", "cold", "cold ÷ warm"],
        rows,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
