"""Development server benchmark: the service as ``make run`` starts it, a fan-out and idle latency.

    .venv/bin/python -m bench.devrun [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]
                                     [--webhooks 200] [--rounds 3] [--latency-events 50]

Starts ``python -m webhookapp.devserver`` as ``make run`` does (its settings: the development
config, ``flask run --with-threads`` and one worker, ``python -m workers``, with the app's
defaults, and a directory of its own for the metrics of both), against the benchmark's database
and private Redis, its tables made by the benchmark (``make run``'s ``flask db upgrade``) and
no demo account. Events are posted to ``POST /public/v1/events`` on one keep-alive
``requests.Session``, as a client of the service would. Prints:

* Fan-out: ``--webhooks`` N active webhooks on one product; one event matches all N. Timed from
  just before the POST until the database shows N more successes; against ``bench.delivery``'s
  plain loop (sign and POST the same requests one after the other on one session), alternately,
  ``--rounds`` times; the ratio is that of the medians. Target: ratio >= 1.0.
* Idle latency: ``--latency-events`` K single events, one at a time, ``--idle-gap`` seconds
  apart, each to a product with one webhook: posted to the server (the figure with the target,
  p50 <= 3 ms), and alternately ingested in this process (``engine.ingest.ingest_as``, as
  ``bench.delivery`` measures it) for the same worker. For each, the time from the ingest call to
  the event's ``created_at`` (when the ingest began, in the server), the attempt's ``started_at``
  (the worker's send), the handler's arrival and the recorded success: one clock, so the rows
  show where the time goes.

Why a posted event's idle latency is higher than ``bench.delivery``'s (which calls ``ingest_as``
in its own process): the worker's part is the same (same settings; the doorbell wakes the
lingering job at once while ``--idle-gap`` is below ``WEBHOOK_IDLE_WAIT``; the same under
gunicorn as under ``flask run``, with or without the metrics directory). The posted event pays
for the request before the ingest begins (the client, the server's parsing, Flask's dispatch:
about 2 ms here, against 0.1 ms in process), and the rest of the request runs beside the
worker's wake-up: the doorbell is rung before the answer is written, so the server and the
client then share the cores with the worker. Events further apart than ``WEBHOOK_IDLE_WAIT`` (a
person trying ``make run``) also wait for a new RQ job each. docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from bench.common import (
    CpuMeter,
    Handler,
    add_common_options,
    describe_database,
    engine_env,
    free_port,
    make_tenant,
    percentile,
    prepared_app,
    print_table,
    private_redis,
    run_main,
    start_child,
    temp_dir,
    verdict,
    wait_for_port,
)
from bench.delivery import Burst, DeliveryBench, fmt, wait_worker_idle
from webhookapp.infra.config import normalise_database_url

RATIO_TARGET = 1.0
P50_TARGET_MS = 3.0
PATHS = ("http", "direct")  # the latency products: events posted to the server, ingested here


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.devrun", description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--webhooks", type=int, default=200, help="webhooks matched by the fan-out event (200)")
    parser.add_argument("--rounds", type=int, default=3, help="fan-outs per side, alternating; the median (3)")
    parser.add_argument(
        "--latency-events", type=int, default=50, help="single events for the latency, of each path (50)"
    )
    parser.add_argument("--idle-gap", type=float, default=0.05, help="seconds between latency events (0.05)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds any single wait may take (60)")
    return parser.parse_args(argv)


@dataclass
class Sample:
    """One latency event, in ms from just before the ingest call."""

    returned: float
    arrival: float
    recorded: float
    created: float = float("nan")  # the event's created_at
    started: float = float("nan")  # its attempt's started_at


class DevrunBench(DeliveryBench):
    """``bench.delivery``'s pieces, with events posted to the development server."""

    def __init__(self, args: argparse.Namespace, app, handler: Handler, tenant, devserver, worker_pid: int, url: str):
        super().__init__(args, app, handler, tenant, devserver)
        self.worker_pid = worker_pid
        self.events_url = f"{url}/public/v1/events"
        self.http = requests.Session()
        self.http.trust_env = False

    def post(self, product: str) -> list[str]:
        response = self.http.post(
            self.events_url,
            json={"object_class": "fulfillment_request", "product_id": self.product_ids[product]},
            headers={"Authorization": self.authorization},
            timeout=30,
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /public/v1/events answered {response.status_code}: {response.text[:300]}")
        webhook_ids: list[str] = response.json()["webhooks"]
        return webhook_ids

    def fanout(self) -> Burst:
        n = self.args.webhooks
        before, _ = self.outcomes("fanout")
        base = self.handler.count
        meter = CpuMeter([self.worker_pid])
        start = time.time()
        matched = self.post("fanout")
        posted = time.time()
        if len(matched) != n:
            raise RuntimeError(f"The event matched {len(matched)} webhooks, not {n}")
        self.wait_recorded("fanout", before + n)
        end = time.time()
        cpu = meter.stop()
        self.handler.wait_count(base + n, self.args.timeout)
        last = max(self.handler.arrivals(base, base + n))
        return Burst(end - start, last - start, (posted - start) * 1000, cpu)

    def one_event(self, path: str) -> tuple[float, Sample]:
        before, _ = self.outcomes(path)
        base = self.handler.count
        start = time.time()
        if path == "http":
            self.post(path)
        else:
            self.ingest(path)
        returned = time.time()
        self.handler.wait_count(base + 1, self.args.timeout)
        self.wait_recorded(path, before + 1)
        recorded = time.time()
        ms = lambda moment: (moment - start) * 1000  # noqa: E731
        return start, Sample(ms(returned), ms(self.handler.arrival(base)), ms(recorded))

    def latency(self) -> dict[str, list[Sample]]:
        """Single events, the two paths alternately; then each gets its event's and attempt's times."""
        starts: dict[str, list[float]] = {path: [] for path in PATHS}
        samples: dict[str, list[Sample]] = {path: [] for path in PATHS}
        for index in range(self.args.latency_events):
            for path in PATHS if index % 2 == 0 else PATHS[::-1]:
                start, sample = self.one_event(path)
                starts[path].append(start)
                samples[path].append(sample)
                time.sleep(self.args.idle_gap)
        for path in PATHS:
            created, started = self.moments(path)
            for start, sample, made, sent in zip(starts[path], samples[path], created, started, strict=True):
                sample.created, sample.started = (made - start) * 1000, (sent - start) * 1000
        return samples

    def moments(self, path: str) -> tuple[list[float], list[float]]:
        """The ``created_at`` of the path's events and the ``started_at`` of its webhook's attempts,
        oldest first, as ``time.time()`` values."""
        from sqlalchemy import select

        from webhookapp.models import Attempt, Event

        def epoch(moment: datetime) -> float:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

        webhook_id = self.tenant.webhook_ids[path][0]
        try:
            created = self.db.session.scalars(
                select(Event.created_at).where(Event.product_id == self.product_ids[path]).order_by(Event.created_at)
            ).all()
            started = self.db.session.scalars(
                select(Attempt.started_at).where(Attempt.webhook_id == webhook_id).order_by(Attempt.id)
            ).all()
        finally:
            self.db.session.rollback()
        return [epoch(moment) for moment in created], [epoch(moment) for moment in started]


def start_devserver(stack: contextlib.ExitStack, env: dict[str, str], args: argparse.Namespace, tmp) -> tuple:
    """``python -m webhookapp.devserver`` (stopped with Ctrl-C's signal); returns it and its worker's pid.

    Its web server and worker run in process groups of their own: should the development server
    not stop them in time, they are killed here.
    """
    import psutil

    layout: list[psutil.Process] = []

    def kill_leftovers() -> None:
        for process in layout:
            with contextlib.suppress(psutil.Error):
                process.kill()

    stack.callback(kill_leftovers)  # after the development server's own stop (an ExitStack unwinds LIFO)
    devserver = start_child(stack, "devserver", [sys.executable, "-m", "webhookapp.devserver"], env, tmp,
                            stop_signal=signal.SIGINT, show_log=args.keep_logs)  # fmt: skip
    wait_for_port(int(env["PORT"]), max(args.timeout, 30.0), "the development server", devserver)
    layout.extend(psutil.Process(devserver.pid).children())
    workers = [process.pid for process in layout if "workers" in process.cmdline()]
    if len(workers) != 1:
        raise RuntimeError(f"The development server runs {len(workers)} workers, not 1")
    return devserver, workers[0]


def quantiles(values: list[float]) -> list[str]:
    return [fmt(percentile(values, q), 2) for q in (0.5, 0.9, 0.99)]


def run(args: argparse.Namespace) -> int:
    n = args.webhooks
    capacity = (n + 1) * (args.rounds * 2 + 2) + 3 * args.latency_events + 16
    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-devrun-")
        database_url = normalise_database_url(args.database_url or f"sqlite:///{tmp / 'bench.sqlite'}")
        redis = private_redis(stack)
        handler = Handler(stack, capacity)
        setup_started = time.monotonic()
        app = stack.enter_context(prepared_app(database_url, redis.url, reset=args.reset))
        tenant = make_tenant(handler.url, {"fanout": n, "http": 1, "direct": 1, "warmup": 1})
        port = free_port()
        env = engine_env(database_url, redis.url, HOST="127.0.0.1", PORT=port)
        for name in ("PROMETHEUS_MULTIPROC_DIR", "WEBHOOK_API_URL"):  # make run's own, as on a fresh shell
            env.pop(name, None)
        devserver, worker_pid = start_devserver(stack, env, args, tmp)
        wait_worker_idle(redis.url, devserver, max(args.timeout, 30.0))
        print(
            f"webhookapp development server benchmark: {describe_database(database_url)}, flask run --with-threads "
            f"and 1 worker process ({app.config['WEBHOOK_WORKER_THREADS']} send threads), as make run starts them; "
            f"{n} webhooks, {args.rounds} rounds, {args.latency_events} latency events per path, "
            f"{args.idle_gap:g} s apart; setup {time.monotonic() - setup_started:.1f} s",
            flush=True,
        )

        bench = DevrunBench(args, app, handler, tenant, devserver, worker_pid, f"http://127.0.0.1:{port}")
        # Warm-up: the worker's thread pool and connection, the server's first request, this
        # process's ingest path and the plain session's connection.
        bench.post("warmup")
        bench.wait_recorded("warmup", 1)
        bench.ingest("warmup")
        bench.wait_recorded("warmup", 2)
        plain_webhooks = bench.snapshots("fanout")
        bench.plain_send(bench.snapshots("warmup")[0])
        time.sleep(0.2)

        engine_runs: list[Burst] = []
        plain_runs: list[Burst] = []
        for _ in range(args.rounds):
            engine_runs.append(bench.fanout())
            time.sleep(0.2)
            plain_runs.append(bench.plain_burst(plain_webhooks))
            time.sleep(0.2)
        latency = bench.latency()
        plain_latency = bench.plain_latency(bench.snapshots("http")[0])

    # Everything is stopped and cleaned up here; report.
    rows = []
    for index, (engine, plain) in enumerate(zip(engine_runs, plain_runs, strict=True), 1):
        rows.append(
            [
                index,
                fmt(engine.rate(n)),
                fmt(engine.seconds, 3),
                fmt(engine.ingest_ms, 2),
                fmt(engine.handler_seconds, 3),
                fmt(engine.cpu["children_cpu"] / n * 1000, 2),
                f"{engine.cpu['machine_busy'] * 100:.0f}%",
                fmt(plain.rate(n)),
                fmt(plain.seconds, 3),
                fmt(engine.rate(n) / plain.rate(n), 2),
            ]
        )
    print_table(
        f"Fan-out: one event posted, matching {n} webhooks (until all {n} successes are in the database)",
        ["round", "engine/s", "engine s", "POST ms", "handler s", "worker CPU ms/dlv", "machine busy", "plain/s",
         "plain s", "ratio"],
        rows,
    )  # fmt: skip
    engine_rate = statistics.median(run_.rate(n) for run_ in engine_runs)
    plain_rate = statistics.median(run_.rate(n) for run_ in plain_runs)
    ratio = engine_rate / plain_rate

    milestones = (
        ("ingest begins (event created_at)", "created"),
        ("worker sends (attempt started_at)", "started"),
        ("handler receives", "arrival"),
        ("ingest call returns", "returned"),
        ("success recorded", "recorded"),
    )
    table = []
    for path, label in (("http", "POST to the server"), ("direct", "ingest_as in this process")):
        for name, field in milestones:
            table.append([f"{label}: {name}", *quantiles([getattr(sample, field) for sample in latency[path]])])
    table.append(["plain loop: handler receives", *quantiles(plain_latency)])
    print_table(
        f"Latency with the queue idle: {args.latency_events} single events per path, alternating, "
        "ms from the ingest call",
        ["", "p50", "p90", "p99"],
        table,
    )
    spans = []
    for path, label in (("http", "POST"), ("direct", "in process")):
        samples = latency[path]
        spans.append([f"{label}: call .. ingest begins", *quantiles([s.created for s in samples])])
        spans.append([f"{label}: ingest begins .. worker sends", *quantiles([s.started - s.created for s in samples])])
        spans.append(
            [f"{label}: worker sends .. handler receives", *quantiles([s.arrival - s.started for s in samples])]
        )
    print_table("Where the idle latency goes (ms, each span's own percentiles)", ["", "p50", "p90", "p99"], spans)

    arrival = [sample.arrival for sample in latency["http"]]
    p50 = percentile(arrival, 0.5)
    print_table(
        "Summary",
        ["", "engine", "plain loop", "engine/plain", "target", "verdict"],
        [
            ["fan-out deliveries/s (median)", fmt(engine_rate), fmt(plain_rate), fmt(ratio, 2), f">= {RATIO_TARGET}",
             verdict(ratio >= RATIO_TARGET)],
            ["idle latency p50, POST (ms)", fmt(p50, 2), fmt(percentile(plain_latency, 0.5), 2), "",
             f"<= {P50_TARGET_MS:g}", verdict(p50 <= P50_TARGET_MS)],
            ["idle latency p50, in process (ms)", fmt(percentile([s.arrival for s in latency["direct"]], 0.5), 2),
             "", "", "", ""],
            ["idle latency p99, POST (ms)", fmt(percentile(arrival, 0.99), 2),
             fmt(percentile(plain_latency, 0.99), 2), "", "", ""],
        ],
    )  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.webhooks < 1 or args.rounds < 1 or args.latency_events < 1:
        raise SystemExit("--webhooks, --rounds and --latency-events must be at least 1")
    return run_main(run, args)


if __name__ == "__main__":
    sys.exit(main())
