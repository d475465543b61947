"""Floor benchmark: what storing an event durably and sending it costs on this machine, with no
service in between; the least any webhook service could reach here.

    .venv/bin/python -m bench.floor --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
                                    [--events 150] [--idle-gap 0.05] [--duration 8] [--rounds 3]

Two of the event API's targets are bounded by work every webhook service must do: accept the
request, store the event durably before answering, sign the delivery and send it. This runs
that work alone (``bench.floor_app``: no token, validation, matching, Redis or worker), to say
what the targets ask of the machine (docs/performance.md, "The floor of this machine"):

* **Idle latency, call → handler**, one event at a time (``--idle-gap`` apart), each way in
  turn: posted to ``POST /store-and-send`` (store, sign, send, then answer) on the development
  server as ``make run`` serves the app (``flask run --with-threads``) and on gunicorn
  (``-w 1 -k gthread --threads 4``), from a keep-alive ``requests.Session`` as ``bench.devrun``
  posts; and the same store, sign and send in this process, with no request (the floor of
  ``bench.delivery``'s idle latency, whose events are ingested in its own process). Against
  the targets: ``make run``'s posted event p50 ≤ 3 ms, ``bench.delivery``'s p50 ≤ 3 ms.
* **Events per second**, ``bench.ingest``'s load (gunicorn with its options, ``--client-threads``
  keep-alive sessions, ``--rounds`` alternating measurements): ``POST /store`` (parse, store,
  answer) against the bare endpoint (parse, answer). Against the target: the event API ≥ 0.8
  of the bare endpoint.

PostgreSQL only; its table is created and dropped here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from types import SimpleNamespace

import psycopg
import requests
from sqlalchemy.engine import make_url

from bench.common import (
    Handler,
    free_port,
    percentile,
    print_table,
    refuse_shared_database,
    run_main,
    start_child,
    temp_dir,
    wait_for_port,
)
from bench.floor_app import TABLE, send, store
from bench.ingest import add_load_options, gunicorn, load, wait_ready

BODY = json.dumps({"object_class": "fulfillment_request", "product_id": "PRD-000-000-000"}).encode()
HEADERS = {"Content-Type": "application/json"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL of a database you own")
    parser.add_argument("--events", type=int, default=150, help="single events per way, for the latency (150)")
    parser.add_argument("--idle-gap", type=float, default=0.05, help="seconds between single events (0.05)")
    add_load_options(parser)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a server (30)")
    parser.add_argument("--keep-logs", action="store_true", help="print the servers' logs at the end")
    return parser.parse_args(argv)


@contextlib.contextmanager
def floor_table(conninfo: str):
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(f"CREATE TABLE {TABLE} (id BIGSERIAL PRIMARY KEY, body JSONB NOT NULL, "
                           "created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'))")  # fmt: skip
    try:
        yield
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {TABLE}")


def latency(args: argparse.Namespace, handler: Handler, urls: dict[str, str]) -> dict[str, list[float]]:
    """Call → handler in ms, per way; the ways take turns event by event, in a rotating order."""
    http = requests.Session()
    http.trust_env = False
    direct = requests.Session()
    direct.trust_env = False

    def posted(url: str) -> None:
        response = http.post(url, data=BODY, headers=HEADERS, timeout=30)
        if response.status_code != 202 or not response.json()["sent"]:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")

    def in_process() -> None:
        store(BODY)
        if not send(direct, handler.url):
            raise RuntimeError("The handler refused the in-process delivery")

    ways = {name: (lambda url=url: posted(url)) for name, url in urls.items()}
    ways["in this process: store, sign, send"] = in_process
    for call in ways.values():  # warm every connection and code path once
        call()
    results: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for index in range(args.events):
        turn = names[index % len(names) :] + names[: index % len(names)]
        for name in turn:
            base = handler.count
            start = time.time()
            ways[name]()
            handler.wait_count(base + 1, args.timeout)
            results[name].append((handler.arrival(base) - start) * 1000)
            time.sleep(args.idle_gap)
    return results


def run(args: argparse.Namespace) -> int:
    if make_url(args.database_url).get_backend_name() != "postgresql":
        raise SystemExit("bench.floor measures PostgreSQL: give --database-url postgresql+psycopg://…")
    refuse_shared_database(args.database_url)
    conninfo = make_url(args.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-floor-")
        stack.enter_context(floor_table(conninfo))
        handler = Handler(stack, capacity=args.events * 3 + 16)
        env = {**os.environ, "FLOOR_DATABASE_URL": conninfo, "FLOOR_HANDLER_URL": handler.url, "PYTHONUNBUFFERED": "1"}
        os.environ["FLOOR_DATABASE_URL"] = conninfo  # the in-process way stores through the same code
        dev_port, single_port, load_port, bare_port = free_port(), free_port(), free_port(), free_port()
        dev = start_child(stack, "flask-run", [sys.executable, "-m", "flask", "--app", "bench.floor_app", "run",
                          "--host", "127.0.0.1", "--port", str(dev_port), "--with-threads"], env, tmp,
                          show_log=args.keep_logs)  # fmt: skip
        one_worker = SimpleNamespace(workers=1, worker_class="gthread", threads=4, keep_logs=args.keep_logs)
        single = gunicorn(stack, "gunicorn-single", "bench.floor_app:app", single_port, env, one_worker, tmp)
        loaded = gunicorn(stack, "gunicorn-store", "bench.floor_app:app", load_port, env, args, tmp)
        bare = gunicorn(stack, "gunicorn-bare", "bench.bare_app:app", bare_port, env, args, tmp)
        wait_for_port(dev_port, args.timeout, "the development server", dev)
        for port, child, path in (
            (single_port, single, "store"),
            (load_port, loaded, "store"),
            (bare_port, bare, "events"),
        ):
            wait_ready(f"http://127.0.0.1:{port}/{path}", child, args.timeout)
        print(f"webhookapp floor benchmark: {make_url(args.database_url).render_as_string()}, "
              f"{args.events} single events per way, {args.idle_gap:g} s apart", flush=True)  # fmt: skip

        samples = latency(args, handler, {
            "POST, development server (as make run)": f"http://127.0.0.1:{dev_port}/store-and-send",
            "POST, gunicorn -w 1 -k gthread --threads 4": f"http://127.0.0.1:{single_port}/store-and-send",
        })  # fmt: skip
        store_runs, bare_runs = [], []
        for round_number in range(args.rounds):
            order = ["store", "bare"] if round_number % 2 == 0 else ["bare", "store"]
            for which in order:
                if which == "store":
                    store_runs.append(load("store", f"http://127.0.0.1:{load_port}/store", HEADERS, BODY, 202,
                                           args, loaded.pid))  # fmt: skip
                else:
                    bare_runs.append(load("bare", f"http://127.0.0.1:{bare_port}/events", HEADERS, BODY, 202,
                                          args, bare.pid))  # fmt: skip

    print_table(
        "Idle latency, call → handler (ms): store the event durably, sign, send; nothing else",
        ["way", "p50", "p90", "p99", "target"],
        [[name, *(f"{percentile(values, q):.2f}" for q in (0.5, 0.9, 0.99)),
          "make run ≤ 3" if "make run" in name else ("bench.delivery ≤ 3" if "process" in name else "")]
         for name, values in samples.items()],
    )  # fmt: skip
    rows = [[run_.label, f"{run_.rate:,.1f}", run_.errors, f"{percentile(run_.latencies_ms, 0.5):.1f}",
             f"{run_.cpu['children_cpu'] / max(run_.ok, 1) * 1000:.2f}",
             f"{run_.cpu['database_cpu'] / max(run_.ok, 1) * 1000:.2f}", f"{run_.cpu['machine_busy'] * 100:.0f}%"]
            for run_ in [*store_runs, *bare_runs]]  # fmt: skip
    print_table("Requests per second: parse, store durably, answer (store) against parse, answer (bare)",
                ["server", "req/s", "errors", "p50 ms", "server CPU ms/req", "PostgreSQL CPU ms/req", "machine busy"],
                rows)  # fmt: skip
    store_rate = statistics.median(r.rate for r in store_runs)
    bare_rate = statistics.median(r.rate for r in bare_runs)
    print_table("Summary", ["", "store req/s", "bare req/s", "store/bare", "the event API's target"],
                [["requests accepted", f"{store_rate:,.1f}", f"{bare_rate:,.1f}", f"{store_rate / bare_rate:.2f}",
                  ">= 0.8 of bare"]])  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
