"""Event API benchmark: events/s accepted by ``POST /public/v1/events`` under gunicorn, next to a
bare Flask JSON endpoint under the same server settings, in the same run.

    .venv/bin/python -m bench.ingest [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]
                                     [--duration 8] [--rounds 3] [--client-threads 8] [--workers 2] [--threads 4]
                                     [--platform]

Two gunicorn servers run side by side with the same options: ``wsgi:app`` (the application,
``WEBHOOKAPP_CONFIG=development`` against the benchmark's database and a private Redis) and
``bench.bare_app:app`` (parse the JSON body, answer 202 JSON). A client in this process, with
``--client-threads`` threads each holding its own keep-alive ``requests.Session``, posts valid
events (``{"object_class": "fulfillment_request", "product_id": P}``, P has ``--webhooks``
matching webhooks; with ``--platform``, posted with another account's platform token, so that
each event also writes its row of ``event_feeds``) to one server at a time for ``--warmup`` +
``--duration`` seconds; only the ``--duration`` window counts. No worker runs: triggers stay
pending, which is what the API does under a real load too (each event after the first folds
into the pending trigger).

The servers are measured ``--rounds`` times each, alternately, and the ratio is that of the
medians: this machine's speed drifts from one minute to the next. Prints requests/s, errors,
request latency and CPU per request (the server's processes, the client, and this machine's
PostgreSQL processes) for every measurement, and the ratio app / bare.
Target: ratio >= 0.8 on PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

import requests

from bench.common import (
    CpuMeter,
    add_common_options,
    database_counts,
    describe_database,
    engine_env,
    free_port,
    make_tenant,
    percentile,
    prepared_app,
    print_table,
    private_redis,
    py_spy,
    run_main,
    start_child,
    temp_dir,
    verdict,
)
from webhookapp.infra.config import normalise_database_url

RATIO_TARGET = 0.8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    add_common_options(parser)
    add_load_options(parser)
    parser.add_argument("--webhooks", type=int, default=10, help="webhooks each event matches (10)")
    parser.add_argument(
        "--platform", action="store_true",
        help="post with a platform token of another account (each event then writes a row of event_feeds)",
    )  # fmt: skip
    parser.add_argument(
        "--app", default="wsgi:app", help="the application's WSGI target (wsgi:app); another to measure a change"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a server to start (30)")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="sample the app's gunicorn workers with py-spy (if installed) into PREFIX-app.txt (collapsed stacks)",
    )
    return parser.parse_args(argv)


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The load's options: how long, how many clients, and the gunicorn both servers run."""
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per server (8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement (2)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per server, alternating; median (3)")
    parser.add_argument("--client-threads", type=int, default=8, help="client threads, one session each (8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn -w for both servers (2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn --threads for both servers (4)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn -k for both servers (gthread)")


@dataclass
class LoadResult:
    label: str
    seconds: float
    ok: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


def load(label: str, url: str, headers: dict[str, str], body: bytes, expect: int, args, server_pid: int) -> LoadResult:
    """Post ``body`` from ``--client-threads`` threads for warm-up + duration; count the duration window."""
    result = LoadResult(label, args.duration)
    lock = threading.Lock()
    start_gate = threading.Barrier(args.client_threads + 1)
    timeline: dict[str, float] = {}

    def client() -> None:
        session = requests.Session()
        session.trust_env = False
        ok = errors = 0
        statuses: dict[str, int] = {}
        latencies: list[float] = []
        start_gate.wait()
        begin, end = timeline["begin"], timeline["end"]
        while True:
            sent = time.monotonic()
            if sent >= end:
                break
            try:
                response = session.post(url, data=body, headers=headers, timeout=30)
                status = str(response.status_code)
                good = response.status_code == expect
            except requests.RequestException as exc:
                status, good = type(exc).__name__, False
            done = time.monotonic()
            if sent >= begin and done <= end:
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append((done - sent) * 1000)
                if good:
                    ok += 1
                else:
                    errors += 1
        session.close()
        with lock:
            result.ok += ok
            result.errors += errors
            result.latencies_ms += latencies
            for status, count in statuses.items():
                result.statuses[status] = result.statuses.get(status, 0) + count

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(args.client_threads)]
    for thread in threads:
        thread.start()
    now = time.monotonic()
    timeline["begin"] = now + args.warmup
    timeline["end"] = now + args.warmup + args.duration
    start_gate.wait()
    time.sleep(max(timeline["begin"] - time.monotonic(), 0))
    meter = CpuMeter([server_pid])
    time.sleep(max(timeline["end"] - time.monotonic(), 0))
    result.cpu = meter.stop()
    for thread in threads:
        thread.join()
    return result


def gunicorn(stack, name: str, target: str, port: int, env: dict[str, str], args, log_dir) -> object:
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
        "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--log-level", "warning",
        target,
    ]  # fmt: skip
    return start_child(stack, name, command, env, log_dir, stop_signal=signal.SIGINT, show_log=args.keep_logs)


def wait_ready(url: str, child, timeout: float) -> None:
    """Until every gunicorn worker could answer: a few GETs (405) in a row succeed quickly."""
    deadline = time.monotonic() + timeout
    good = 0
    while good < 10:
        child.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} did not start within {timeout:g} s:\n{child.log_tail()}")
        try:
            requests.get(url, timeout=1)
            good += 1
        except requests.RequestException:
            good = 0
            time.sleep(0.1)


@contextlib.contextmanager
def profiled(prefix: str | None, pid: int):
    """py-spy samples of the app's gunicorn for the duration of the block, if ``--profile`` asks."""
    if not prefix:
        yield
        return
    with py_spy(f"{prefix}-app.txt", pid, "the app's gunicorn", rate=200, subprocesses=True):
        yield


def run(args: argparse.Namespace) -> int:
    from webhookapp.infra.extensions import db

    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-ingest-")
        database_url = normalise_database_url(args.database_url or f"sqlite:///{tmp / 'bench.sqlite'}")
        redis = private_redis(stack)
        stack.enter_context(prepared_app(database_url, redis.url, reset=args.reset))
        tenant = make_tenant("http://127.0.0.1:9", {"events": args.webhooks})
        product_id = tenant.products["events"].id
        plain_token = tenant.plain_token
        if args.platform:  # the platform posts for the vendor, as most events are posted
            from webhookapp.services import accounts, tokens

            plain_token = tokens.create_token(accounts.create_account("distributor", "Bench Platform"), "bench",
                                              platform=True)[1]  # fmt: skip
        db.session.remove()

        env = engine_env(database_url, redis.url)
        app_port, bare_port = free_port(), free_port()
        app_server = gunicorn(stack, "gunicorn-app", args.app, app_port, env, args, tmp)
        bare_server = gunicorn(stack, "gunicorn-bare", "bench.bare_app:app", bare_port, env, args, tmp)
        app_url = f"http://127.0.0.1:{app_port}/public/v1/events"
        bare_url = f"http://127.0.0.1:{bare_port}/events"
        wait_ready(app_url, app_server, args.timeout)
        wait_ready(bare_url, bare_server, args.timeout)
        print(
            f"webhookapp ingest benchmark: {describe_database(database_url)}; gunicorn -w {args.workers} "
            f"-k {args.worker_class} --threads {args.threads} for both; {args.client_threads} client threads; "
            f"{args.warmup:g} s warm-up + {args.duration:g} s per measurement; each event matches "
            f"{args.webhooks} webhooks" + (", posted with a platform token" if args.platform else ""),
            flush=True,
        )

        body = json.dumps({"object_class": "fulfillment_request", "product_id": product_id}).encode()
        app_headers = {"Authorization": f"ApiKey {plain_token}", "Content-Type": "application/json"}
        bare_headers = {"Content-Type": "application/json"}
        app_runs: list[LoadResult] = []
        bare_runs: list[LoadResult] = []
        for round_number in range(args.rounds):
            order = ["app", "bare"] if round_number % 2 == 0 else ["bare", "app"]
            for which in order:
                if which == "app":
                    with profiled(args.profile if round_number == 0 else None, app_server.pid):
                        app_runs.append(load("app", app_url, app_headers, body, 202, args, app_server.pid))
                else:
                    bare_runs.append(load("bare", bare_url, bare_headers, body, 202, args, bare_server.pid))
                app_server.check_alive()
                bare_server.check_alive()

        events, counted = database_counts(
            db,
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COALESCE(SUM(events_count), 0) FROM webhooks)",
        )

    rows = []
    for run_ in [*app_runs, *bare_runs]:
        latencies = run_.latencies_ms
        rows.append(
            [
                "POST /public/v1/events (app)" if run_.label == "app" else "bare Flask JSON endpoint",
                f"{run_.rate:,.1f}",
                run_.ok,
                run_.errors,
                ", ".join(f"{k}: {v}" for k, v in sorted(run_.statuses.items())),
                f"{percentile(latencies, 0.5):.1f}",
                f"{percentile(latencies, 0.99):.1f}",
                f"{run_.cpu['children_cpu'] / max(run_.ok, 1) * 1000:.2f}",
                f"{run_.cpu['own_cpu'] / max(run_.ok, 1) * 1000:.2f}",
                f"{run_.cpu['database_cpu'] / max(run_.ok, 1) * 1000:.2f}",
                f"{run_.cpu['machine_busy'] * 100:.0f}%",
            ]
        )
    print_table(
        "Requests accepted in the measured window",
        ["server", "req/s", "ok", "errors", "statuses", "p50 ms", "p99 ms", "server CPU ms/req",
         "client CPU ms/req", "PostgreSQL CPU ms/req", "machine busy"],
        rows,
    )  # fmt: skip
    app_rate = statistics.median(r.rate for r in app_runs)
    bare_rate = statistics.median(r.rate for r in bare_runs)
    ratio = app_rate / bare_rate if bare_rate else float("nan")
    print_table(
        "Summary",
        ["", "app req/s", "bare req/s", "app/bare", "target", "verdict"],
        [["events accepted", f"{app_rate:,.1f}", f"{bare_rate:,.1f}", f"{ratio:.2f}", f">= {RATIO_TARGET}",
          verdict(ratio >= RATIO_TARGET)]],
    )  # fmt: skip
    print(
        f"\nDatabase after the run: {events} events stored (warm-up included), {counted} counted on "
        f"{args.webhooks} webhooks (expected {events * args.webhooks})."
    )
    return 0 if counted == events * args.webhooks else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.duration <= 0 or args.client_threads < 1 or args.rounds < 1:
        raise SystemExit("--duration, --client-threads and --rounds must be positive")
    return run_main(run, args)


if __name__ == "__main__":
    sys.exit(main())
