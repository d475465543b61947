"""Slow handlers benchmark: many webhooks whose handler takes its time, one event, the engine
against a plain thread pool of the same size.

    .venv/bin/python -m bench.slow_handlers [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]
                                            [--webhooks 2000] [--delay 0.2] [--rounds 3]

Prints deliveries/s for the engine with one worker process (``python -m workers``, as ``make run``
and ``bench.delivery`` start it) and for a plain ``ThreadPoolExecutor`` in this process with as
many threads as the worker has send threads, in the same run, and their ratio; the worker's CPU
per delivery; the most requests the handler held at once; and a check that every delivery was
sent and recorded exactly once. Target: ratio >= 0.9. Per round, "ramp ms" is the time from the
first request at the handler to the one that had every thread busy, "mean held" the requests held
on average (deliveries/s × delay; the thread count at best) and "peak held" the most at once.

* The handler (``bench.common.Handler`` with ``--delay``) answers each request ``--delay``
  seconds after it arrived. It is an asyncio server: a held request is a timer, not a thread,
  so it holds as many at once as it is sent and never limits the concurrency itself.
* The engine's concurrency: a worker process sends on ``WEBHOOK_WORKER_THREADS`` threads (64 by
  default); the window of ``engine/delivery/flight.py`` lets one send at a time be *young*
  (``FAST_WINDOW``), and a send that has waited ``SLOW_AFTER`` (1 ms) on its handler leaves it, so
  with slow handlers every thread is busy: at most threads ÷ delay deliveries/s (320/s with the
  defaults), which the summary shows as "ideal".
* Engine: ``--webhooks`` N active webhooks on one product, the worker started and idle; one
  event (``engine.ingest.ingest_as``, what the endpoint calls) matches all N. One event, not a
  few: later events to the same webhooks fold into their pending triggers and add no deliveries,
  and events to other products would only add ingest calls; one event is the fan-out of
  ``bench.delivery``, with the sends as the only difference. Timed from just before the ingest
  call until the database shows N more successes.
* Plain pool: the same N webhooks, ``signing.build_payload`` + ``signing.sign`` and a POST
  through a keep-alive ``requests.Session`` per thread (what ``bench.delivery``'s plain loop
  does), submitted at once to a ``ThreadPoolExecutor`` of the engine's thread count; timed
  until the last answer.

Both sides are warmed up first on as many webhooks as there are threads (connections opened,
thread pools built), then measured ``--rounds`` times, alternately; the medians are reported.
Everything started here is stopped, and the tables dropped, at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from bench.common import (
    CpuMeter,
    Handler,
    add_common_options,
    database_counts,
    describe_database,
    make_tenant,
    plain_send,
    prepared_app,
    print_table,
    private_redis,
    run_main,
    temp_dir,
    verdict,
)
from bench.delivery import DeliveryBench, fmt, start_idle_worker
from webhookapp.infra.config import normalise_database_url

RATIO_TARGET = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_handlers", description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--webhooks", type=int, default=2000, help="webhooks matched by the event (2000)")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the handler holds each request (0.2)")
    parser.add_argument("--rounds", type=int, default=3, help="events per side, alternating; the median (3)")
    parser.add_argument(
        "--worker-threads", type=int, help="WEBHOOK_WORKER_THREADS for the worker, and the plain pool's size "
        "(default: the app's, 64)",
    )  # fmt: skip
    parser.add_argument(
        "--worker-module", default="workers", help="run the worker as python -m MODULE (workers); to measure a change"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any single wait may take (120)")
    return parser.parse_args(argv)


@dataclass
class Run:
    seconds: float  # engine: ingest call .. N successes in the database; plain: until the last answer
    handler_seconds: float  # .. the last arrival at the handler
    peak: int  # the most requests the handler held at once
    ramp_ms: float  # from the first arrival to the arrival that filled every thread
    cpu: dict[str, float]
    errors: int = 0

    def rate(self, n: int) -> float:
        return n / self.seconds


class SlowBench(DeliveryBench):
    """``bench.delivery``'s engine side, with a thread pool for the plain side."""

    def __init__(self, args: argparse.Namespace, app, handler: Handler, tenant, worker, threads: int):
        super().__init__(args, app, handler, tenant, worker)
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="plain")
        self.local = threading.local()

    def engine_run(self) -> Run:
        n = self.args.webhooks
        before, _ = self.outcomes("slow")
        base = self.handler.count
        self.handler.reset_peak()
        meter = CpuMeter([self.worker.pid])
        start = time.time()
        matched = self.ingest("slow")
        if len(matched) != n:
            raise RuntimeError(f"The event matched {len(matched)} webhooks, not {n}")
        self.wait_recorded("slow", before + n)
        end = time.time()
        cpu = meter.stop()
        self.handler.wait_count(base + n, self.args.timeout)
        arrivals = sorted(self.handler.arrivals(base, base + n))
        return Run(end - start, arrivals[-1] - start, self.handler.peak, self.ramp(arrivals), cpu)

    def pooled_send(self, webhook) -> bool:
        """A plain send on this thread's own keep-alive session (and app context, for the key ring)."""
        session = getattr(self.local, "session", None)
        if session is None:
            self.app.app_context().push()  # the thread's for its life: signing reads the app's keys
            session = self.local.session = requests.Session()
            session.trust_env = False
        return plain_send(session, webhook, self.api_url, self.processing_timeout)

    def plain_run(self, webhooks: list) -> Run:
        n = len(webhooks)
        base = self.handler.count
        self.handler.reset_peak()
        meter = CpuMeter()
        start = time.time()
        errors = sum(not ok for ok in self.pool.map(self.pooled_send, webhooks))
        end = time.time()
        cpu = meter.stop()
        self.handler.wait_count(base + n, self.args.timeout)
        arrivals = sorted(self.handler.arrivals(base, base + n))
        return Run(end - start, arrivals[-1] - start, self.handler.peak, self.ramp(arrivals), cpu, errors)

    def ramp(self, arrivals: list[float]) -> float:
        """Milliseconds from the first arrival to the one that made every thread busy."""
        return (arrivals[min(self.threads, len(arrivals)) - 1] - arrivals[0]) * 1000

    def recorded_once(self) -> tuple[int, int, int, int, int]:
        """The engine's attempts on the slow product: total, webhooks with any, fewest and most
        per webhook, and failures."""
        row = database_counts(
            self.db,
            "SELECT COALESCE(SUM(n), 0), COUNT(*), COALESCE(MIN(n), 0), COALESCE(MAX(n), 0), COALESCE(SUM(failed), 0) "
            "FROM (SELECT COUNT(*) AS n, SUM(CASE WHEN success THEN 0 ELSE 1 END) AS failed FROM attempts "
            "WHERE webhook_id IN (SELECT id FROM webhooks WHERE product_id = :product) GROUP BY webhook_id) AS per",
            product=self.product_ids["slow"],
        )
        return int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4])


def run(args: argparse.Namespace) -> int:
    n = args.webhooks
    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-slow-")
        database_url = normalise_database_url(args.database_url or f"sqlite:///{tmp / 'bench.sqlite'}")
        redis = private_redis(stack)
        setup_started = time.monotonic()
        app = stack.enter_context(prepared_app(database_url, redis.url, reset=args.reset))
        threads = args.worker_threads or app.config["WEBHOOK_WORKER_THREADS"]
        handler = Handler(stack, (n + threads) * (args.rounds * 2 + 2) + 16, delay=args.delay)
        tenant = make_tenant(handler.url, {"slow": n, "warmup": threads})
        worker = start_idle_worker(stack, args, database_url, redis.url, tmp)
        print(
            f"webhookapp slow handlers benchmark: {describe_database(database_url)}, {n} webhooks, handler "
            f"answers after {args.delay * 1000:g} ms; engine: 1 worker process ({threads} send threads); plain: "
            f"ThreadPoolExecutor({threads}); {args.rounds} rounds; setup {time.monotonic() - setup_started:.1f} s",
            flush=True,
        )

        bench = SlowBench(args, app, handler, tenant, worker, threads)
        stack.callback(bench.pool.shutdown)
        # Warm-up: the worker builds its thread pool and opens its connections, as many as it has
        # threads; the plain pool's threads open theirs. Neither is part of what is measured.
        bench.ingest("warmup")
        bench.wait_recorded("warmup", threads)
        plain_webhooks = bench.snapshots("slow")
        list(bench.pool.map(bench.pooled_send, bench.snapshots("warmup")))
        time.sleep(args.delay + 0.2)

        engine_runs: list[Run] = []
        plain_runs: list[Run] = []
        for _ in range(args.rounds):
            engine_runs.append(bench.engine_run())
            time.sleep(args.delay + 0.2)
            plain_runs.append(bench.plain_run(plain_webhooks))
            time.sleep(args.delay + 0.2)
        time.sleep(1.0)  # a send twice would arrive and be recorded meanwhile
        attempts, webhooks_sent, fewest, most, failed = bench.recorded_once()
        received = handler.count
        expected_received = 2 * threads + 2 * n * args.rounds

    # Everything is stopped and cleaned up here; report.
    rows = []
    for index, (engine, plain) in enumerate(zip(engine_runs, plain_runs, strict=True), 1):
        rows.append(
            [
                index,
                fmt(engine.rate(n)),
                fmt(engine.seconds, 3),
                fmt(engine.handler_seconds, 3),
                fmt(engine.ramp_ms),
                fmt(engine.rate(n) * args.delay),
                engine.peak,
                fmt(engine.cpu["children_cpu"] / n * 1000, 2),
                f"{engine.cpu['machine_busy'] * 100:.0f}%",
                fmt(plain.rate(n)),
                fmt(plain.seconds, 3),
                fmt(plain.ramp_ms),
                fmt(plain.rate(n) * args.delay),
                plain.peak,
                fmt(plain.cpu["own_cpu"] / n * 1000, 2),
                fmt(engine.rate(n) / plain.rate(n), 2),
            ]
        )
    print_table(
        f"One event matching {n} webhooks, handler answering after {args.delay * 1000:g} ms "
        f"(engine: until all {n} successes are in the database)",
        ["round", "engine/s", "engine s", "handler s", "ramp ms", "mean held", "peak held", "worker CPU ms/dlv",
         "machine busy", "plain/s", "plain s", "ramp ms", "mean held", "peak held", "plain CPU ms/dlv", "ratio"],
        rows,
    )  # fmt: skip
    engine_rate = statistics.median(run_.rate(n) for run_ in engine_runs)
    plain_rate = statistics.median(run_.rate(n) for run_ in plain_runs)
    ratio = engine_rate / plain_rate
    worker_cpu = statistics.median(run_.cpu["children_cpu"] / n * 1000 for run_ in engine_runs)
    plain_cpu = statistics.median(run_.cpu["own_cpu"] / n * 1000 for run_ in plain_runs)
    errors = sum(run_.errors for run_ in plain_runs)
    once = (
        attempts == n * args.rounds and webhooks_sent == n and fewest == most == args.rounds and not failed
        and received == expected_received and not errors
    )  # fmt: skip
    print_table(
        "Summary",
        ["", "engine", "plain pool", "engine/plain", "target", "verdict"],
        [
            ["deliveries/s (median)", fmt(engine_rate), fmt(plain_rate), fmt(ratio, 2), f">= {RATIO_TARGET}",
             verdict(ratio >= RATIO_TARGET)],
            ["ideal: threads / delay", fmt(threads / args.delay), fmt(threads / args.delay), "", "", ""],
            ["CPU per delivery (ms, median)", fmt(worker_cpu, 2), fmt(plain_cpu, 2), fmt(worker_cpu / plain_cpu, 2),
             "", ""],
            ["each delivery sent and recorded once", "yes" if once else "NO", "", "", "yes", verdict(once)],
        ],
    )  # fmt: skip
    print(
        f"\nEngine attempts on the {n} webhooks: {attempts} (expected {n * args.rounds}), {webhooks_sent} webhooks "
        f"with attempts, {fewest}-{most} each (expected {args.rounds}), {failed} failed. Requests at the handler: "
        f"{received} (expected {expected_received}, warm-up included); plain pool non-2xx answers: {errors}."
    )
    return 0 if once else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.webhooks < 1 or args.rounds < 1 or args.delay < 0:
        raise SystemExit("--webhooks and --rounds must be at least 1, --delay not negative")
    return run_main(run, args)


if __name__ == "__main__":
    sys.exit(main())
