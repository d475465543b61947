"""Delivery engine benchmark: many webhooks, a burst of events, a fast local handler.

    .venv/bin/python -m bench.delivery [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]
                                       [--webhooks 500] [--latency-events 50] [--rounds 3]

Prints deliveries/s and ingest-to-handler latency (p50/p99) for the engine with one worker
process (``python -m workers``), and for a plain signing loop in this process, in the same run,
and their ratio. Targets: ratio >= 1.0; p50 latency <= 3 ms when the queue is idle.

* Throughput, engine: ``--webhooks`` N active webhooks on one product, the worker started and
  idle; one event (``engine.ingest.ingest_as``, what the endpoint calls) matches all N. Timed
  from just before the ingest call until the database shows N more successes (the handler has
  had all N by then). Repeated ``--rounds`` times; the median is reported. The table also shows
  when the last delivery reached the handler ("handler s"), the worker's CPU per delivery and how
  busy the whole machine was.
* Throughput, plain loop: for the same N webhooks, ``signing.build_payload`` + ``signing.sign``
  and a POST through one ``requests.Session`` to the same handler, one after the other.
* Latency, queue idle: ``--latency-events`` K single events to a product with one webhook, one
  at a time; each waits for the handler and for the success to be recorded, then
  ``--idle-gap`` seconds. Latency = handler arrival (``time.time()`` in the handler process)
  minus ``time.time()`` just before the ingest call (plain loop: before signing).

The handler is an asyncio HTTP/1.1 keep-alive server in its own process; it records arrival
times in shared memory. Everything started here is stopped, and the tables dropped, at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.common import (
    CpuMeter,
    Handler,
    add_common_options,
    database_counts,
    describe_database,
    engine_env,
    make_tenant,
    percentile,
    plain_send,
    prepared_app,
    print_table,
    private_redis,
    py_spy,
    run_main,
    start_child,
    temp_dir,
    verdict,
    wait_until,
)
from webhookapp.infra.config import normalise_database_url

RATIO_TARGET = 1.0
P50_TARGET_MS = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--webhooks", type=int, default=500, help="webhooks matched by the burst event (500)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per side; the median is reported (3)")
    parser.add_argument("--latency-events", type=int, default=50, help="single events for the latency (50)")
    parser.add_argument("--idle-gap", type=float, default=0.05, help="seconds between latency events (0.05)")
    parser.add_argument(
        "--worker-threads", type=int, help="WEBHOOK_WORKER_THREADS for the worker (default: the app's, 64)"
    )
    parser.add_argument(
        "--worker-module", default="workers", help="run the worker as python -m MODULE (workers); to measure a change"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds any single wait may take (60)")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="sample the worker with py-spy (if installed) into PREFIX-burst.txt and PREFIX-latency.txt "
        "(collapsed stacks); sampling slows the worker, so its figures are not comparable",
    )
    return parser.parse_args(argv)


@dataclass
class Burst:
    seconds: float  # ingest call .. N successes in the database
    handler_seconds: float  # ingest call .. last arrival at the handler
    ingest_ms: float
    cpu: dict[str, float]
    errors: int = 0

    def rate(self, n: int) -> float:
        return n / self.seconds


class DeliveryBench:
    def __init__(self, args: argparse.Namespace, app, handler: Handler, tenant, worker):
        from webhookapp.infra.extensions import db

        self.args = args
        self.app = app
        self.db = db
        self.handler = handler
        self.tenant = tenant
        self.worker = worker
        self.processing_timeout = float(app.config["WEBHOOK_PROCESSING_TIMEOUT"])
        self.api_url = app.config["WEBHOOK_API_URL"]
        self.session = requests.Session()
        self.session.trust_env = False
        # Read once: the ORM rows expire at every commit, and a refresh inside a timed window
        # would be a query the service never makes.
        self.product_ids = {name: product.id for name, product in tenant.products.items()}
        self.authorization = f"ApiKey {tenant.plain_token}"

    # -- the engine ------------------------------------------------------------------------

    def outcomes(self, product: str) -> tuple[int, int]:
        row = database_counts(
            self.db,
            "SELECT COALESCE(SUM(success_count), 0), COALESCE(SUM(failure_count), 0) FROM webhooks "
            "WHERE product_id = :product",
            product=self.product_ids[product],
        )
        return int(row[0]), int(row[1])

    def ingest(self, product: str) -> list[str]:
        from webhookapp.engine import ingest, runtime

        body = {"object_class": "fulfillment_request", "product_id": self.product_ids[product]}
        groups = runtime.of(self.app).group_commit
        return ingest.ingest_as(self.authorization, body, groups).webhook_ids  # the endpoint's own call

    def wait_recorded(self, product: str, successes: int) -> None:
        def recorded() -> bool:
            self.worker.check_alive()
            done, failed = self.outcomes(product)
            if failed:
                raise RuntimeError(f"{failed} deliveries failed; worker log:\n{self.worker.log_tail()}")
            return done >= successes

        wait_until(recorded, self.args.timeout, f"{successes} successes of {product!r} in the database")

    def engine_burst(self) -> Burst:
        n = self.args.webhooks
        before, _ = self.outcomes("burst")
        base = self.handler.count
        meter = CpuMeter([self.worker.pid])
        start = time.time()
        matched = self.ingest("burst")
        ingested = time.time()
        if len(matched) != n:
            raise RuntimeError(f"The event matched {len(matched)} webhooks, not {n}")
        self.handler.wait_count(base + n, self.args.timeout, interval=0.005)
        self.wait_recorded("burst", before + n)
        end = time.time()
        cpu = meter.stop()
        last = max(self.handler.arrivals(base, base + n))
        return Burst(end - start, last - start, (ingested - start) * 1000, cpu)

    def engine_latency(self) -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {"arrival": [], "ingest": [], "recorded": []}
        for _ in range(self.args.latency_events):
            before, _ = self.outcomes("latency")
            base = self.handler.count
            start = time.time()
            self.ingest("latency")
            ingested = time.time()
            self.handler.wait_count(base + 1, self.args.timeout)
            self.wait_recorded("latency", before + 1)
            recorded = time.time()
            samples["arrival"].append((self.handler.arrival(base) - start) * 1000)
            samples["ingest"].append((ingested - start) * 1000)
            samples["recorded"].append((recorded - start) * 1000)
            time.sleep(self.args.idle_gap)
        return samples

    # -- the plain loop ----------------------------------------------------------------------

    def snapshots(self, product: str) -> list:
        from sqlalchemy import select

        from webhookapp.engine.types import snapshot
        from webhookapp.models import Webhook

        ids = self.tenant.webhook_ids[product]
        rows = self.db.session.scalars(select(Webhook).where(Webhook.id.in_(ids))).all()
        snapshots = [snapshot(row) for row in rows]
        self.db.session.rollback()
        return snapshots

    def plain_send(self, webhook) -> bool:
        return plain_send(self.session, webhook, self.api_url, self.processing_timeout)

    def plain_burst(self, webhooks: list) -> Burst:
        n = len(webhooks)
        base = self.handler.count
        meter = CpuMeter()
        start = time.time()
        errors = sum(not self.plain_send(webhook) for webhook in webhooks)
        end = time.time()
        cpu = meter.stop()
        self.handler.wait_count(base + n, self.args.timeout)
        last = max(self.handler.arrivals(base, base + n))
        return Burst(end - start, last - start, 0.0, cpu, errors)

    def plain_latency(self, webhook) -> list[float]:
        samples = []
        for _ in range(self.args.latency_events):
            base = self.handler.count
            start = time.time()
            if not self.plain_send(webhook):
                raise RuntimeError("The handler refused a plain delivery")
            self.handler.wait_count(base + 1, self.args.timeout)
            samples.append((self.handler.arrival(base) - start) * 1000)
            time.sleep(self.args.idle_gap)
        return samples


def start_idle_worker(
    stack: contextlib.ExitStack, args: argparse.Namespace, database_url: str, redis_url: str, tmp: Path
) -> subprocess.Popen:
    """One worker process (``--worker-module``, ``--worker-threads``), started and idle."""
    settings = {"WEBHOOK_WORKER_THREADS": args.worker_threads} if args.worker_threads else {}
    worker = start_child(
        stack, "worker", [sys.executable, "-m", args.worker_module], engine_env(database_url, redis_url, **settings),
        tmp, show_log=args.keep_logs,
    )  # fmt: skip
    wait_worker_idle(redis_url, worker, max(args.timeout, 30.0))
    return worker


def wait_worker_idle(redis_url: str, worker, timeout: float) -> None:
    from redis import Redis
    from rq import Worker

    connection = Redis.from_url(redis_url)

    def idle() -> bool:
        worker.check_alive()
        return any(w.get_state() == "idle" for w in Worker.all(connection=connection))

    try:
        wait_until(idle, timeout, "the worker to register and go idle", interval=0.05)
    finally:
        connection.close()


@contextlib.contextmanager
def profiled(prefix: str | None, phase: str, worker):
    """py-spy samples of the worker for the duration of the block, if ``--profile`` asks."""
    if not prefix:
        yield
        return
    with py_spy(f"{prefix}-{phase}.txt", worker.pid, f"the worker ({phase})", rate=500):
        yield


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def run(args: argparse.Namespace) -> int:
    n = args.webhooks
    capacity = (n + 1) * (args.rounds * 2 + 2) + 2 * args.latency_events + 16
    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-delivery-")
        database_url = normalise_database_url(args.database_url or f"sqlite:///{tmp / 'bench.sqlite'}")
        redis = private_redis(stack)
        handler = Handler(stack, capacity)
        setup_started = time.monotonic()
        app = stack.enter_context(prepared_app(database_url, redis.url, reset=args.reset))
        tenant = make_tenant(handler.url, {"burst": n, "latency": 1, "warmup": 1})
        worker = start_idle_worker(stack, args, database_url, redis.url, tmp)
        threads = args.worker_threads or app.config["WEBHOOK_WORKER_THREADS"]
        print(
            f"webhookapp delivery benchmark: {describe_database(database_url)}, {n} webhooks, "
            f"1 worker process ({threads} send threads), {args.rounds} rounds, "
            f"{args.latency_events} latency events; setup {time.monotonic() - setup_started:.1f} s",
            flush=True,
        )

        bench = DeliveryBench(args, app, handler, tenant, worker)
        # Warm-up: the worker builds its thread pool and HTTP pool on its first job; the plain
        # session opens its connection. Neither is part of what is measured.
        bench.ingest("warmup")
        bench.wait_recorded("warmup", 1)
        plain_webhooks = bench.snapshots("burst")
        bench.plain_send(bench.snapshots("warmup")[0])
        time.sleep(0.2)

        engine_runs: list[Burst] = []
        plain_runs: list[Burst] = []
        with profiled(args.profile, "burst", worker):
            for _ in range(args.rounds):
                engine_runs.append(bench.engine_burst())
                time.sleep(0.2)
                plain_runs.append(bench.plain_burst(plain_webhooks))
                time.sleep(0.2)

        with profiled(args.profile, "latency", worker):
            engine_latency = bench.engine_latency()
        plain_latency = bench.plain_latency(bench.snapshots("latency")[0])

    # Everything is stopped and cleaned up here; report.
    rows = []
    for index, (engine, plain) in enumerate(zip(engine_runs, plain_runs, strict=True), 1):
        rows.append(
            [
                index,
                fmt(engine.rate(n)),
                fmt(engine.seconds, 3),
                fmt(engine.handler_seconds, 3),
                fmt(engine.cpu["children_cpu"] / n * 1000, 2),
                f"{engine.cpu['machine_busy'] * 100:.0f}%",
                fmt(plain.rate(n)),
                fmt(plain.seconds, 3),
                fmt(plain.cpu["own_cpu"] / n * 1000, 2),
                f"{plain.cpu['machine_busy'] * 100:.0f}%",
                fmt(engine.rate(n) / plain.rate(n), 2),
            ]
        )
    print_table(
        f"Throughput: one event matching {n} webhooks (engine: until all {n} successes are in the database)",
        [
            "round",
            "engine/s",
            "engine s",
            "handler s",
            "worker CPU ms/dlv",
            "machine busy (engine)",
            "plain/s",
            "plain s",
            "plain CPU ms/dlv",
            "machine busy (plain)",
            "ratio",
        ],
        rows,
    )
    engine_rate = statistics.median(run.rate(n) for run in engine_runs)
    plain_rate = statistics.median(run.rate(n) for run in plain_runs)
    ratio = engine_rate / plain_rate
    errors = sum(run.errors for run in plain_runs)

    arrival = engine_latency["arrival"]
    print_table(
        f"Latency with the queue idle: {args.latency_events} single events, one at a time (ms)",
        ["", "p50", "p90", "p99", "max"],
        [
            [label, *(fmt(percentile(values, q), 2) for q in (0.5, 0.9, 0.99)), fmt(max(values), 2)]
            for label, values in (
                ("engine: ingest call returns", engine_latency["ingest"]),
                ("engine: handler receives", arrival),
                ("engine: success recorded", engine_latency["recorded"]),
                ("plain loop: handler receives", plain_latency),
            )
        ],
    )
    p50 = percentile(arrival, 0.5)
    print_table(
        "Summary",
        ["", "engine", "plain loop", "engine/plain", "target", "verdict"],
        [
            ["deliveries/s (median)", fmt(engine_rate), fmt(plain_rate), fmt(ratio, 2), f">= {RATIO_TARGET}",
             verdict(ratio >= RATIO_TARGET)],
            ["latency p50 (ms)", fmt(p50, 2), fmt(percentile(plain_latency, 0.5), 2), "", f"<= {P50_TARGET_MS:g}",
             verdict(p50 <= P50_TARGET_MS)],
            ["latency p99 (ms)", fmt(percentile(arrival, 0.99), 2), fmt(percentile(plain_latency, 0.99), 2), "", "",
             ""],
        ],
    )  # fmt: skip
    if errors:
        print(f"\nplain loop: {errors} non-2xx answers")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.webhooks < 1 or args.rounds < 1 or args.latency_events < 1:
        raise SystemExit("--webhooks, --rounds and --latency-events must be at least 1")
    return run_main(run, args)


if __name__ == "__main__":
    sys.exit(main())
