"""Where the time goes: py-spy profiles and pg_stat_statements of the delivery engine and the
event API on PostgreSQL, and timestamps along the idle path (docs/performance.md, "Where the
time goes").

    .venv/bin/python -m bench.profile delivery --database-url postgresql+psycopg://postgres@127.0.0.1:5499/bench \
        --out /tmp/prof [--webhooks 500] [--rounds 5] [--latency-events 50]
    .venv/bin/python -m bench.profile ingest --database-url … --out /tmp/prof [--duration 8]
    .venv/bin/python -m bench.profile summary /tmp/prof/worker-burst.txt --per 2500

Needs py-spy (``.venv/bin/pip install py-spy``) and a PostgreSQL server of your own with
``shared_preload_libraries = 'pg_stat_statements'`` (``pg_stat_statements.track = all``) and
the extension created in the database: the statistics are reset before each phase and read
after it (calls, execution and planning time, rows, buffers), and ``pg_stat_wal`` with them.

``delivery`` sets up as ``bench.delivery`` does (one worker, a fast handler), with the worker
run as :mod:`bench.timeline`. Phases: bursts of one event matching ``--webhooks`` webhooks,
unprofiled (worker CPU per delivery; statistics) then sampled by py-spy (``worker-burst.txt``);
single events with the queue idle, sampled (``worker-idle.txt``); the worker with no events,
its CPU and samples (``worker-background.txt``); single events again, unprofiled, with
timestamps along the path (statistics; the timeline). ``ingest`` runs the app and the bare
endpoint under gunicorn as ``bench.ingest`` does, each unprofiled (CPU per event; statistics)
and sampled (``web-app.txt``, ``web-bare.txt``). py-spy samples only the thread holding the GIL
(``--gil``): a sample is Python's CPU, and its share is what ``summary`` splits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import cast

from bench import delivery as bench_delivery
from bench import ingest as bench_ingest
from bench import timeline
from bench.common import (
    Child,
    CpuMeter,
    Handler,
    engine_env,
    free_port,
    make_tenant,
    prepared_app,
    private_redis,
    py_spy,
    temp_dir,
)
from bench.pgstats import Statistics, activity
from bench.profile_summary import summarise
from webhookapp.infra.config import normalise_database_url

RATE = 250  # py-spy's samples per second


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of process ``pid`` (user, system) and of its children, and its busiest threads."""
    import psutil  # type: ignore[import-untyped]  # as bench.common uses it

    root = psutil.Process(pid)
    times = root.cpu_times()
    children = sum(c.cpu_times().user + c.cpu_times().system for c in root.children(recursive=True))
    threads = {f"thread {t.id}": t.user_time + t.system_time for t in root.threads()}
    return {"user": times.user, "system": times.system, "children": children, **threads}


def cpu_split(before: dict[str, float], after: dict[str, float], per: float) -> str:
    """Milliseconds per ``per`` of each part, the five busiest threads only."""
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    threads = sorted((key for key in delta if key.startswith("thread")), key=lambda k: -delta[k])[:5]
    keys = ["user", "system", "children", *threads]
    return ", ".join(f"{key} {delta[key] / per * 1000:.2f}" for key in keys)


def sampled(out: Path, name: str, pid: int, *, subprocesses: bool = False) -> contextlib.AbstractContextManager[None]:
    """py-spy samples of ``pid`` into ``OUT/NAME.txt`` while the block runs."""
    return py_spy(str(out / f"{name}.txt"), pid, name, rate=RATE, subprocesses=subprocesses)


def delivery(args: argparse.Namespace) -> None:
    """Bursts, unprofiled then sampled; idle events, sampled then timed; an idle worker, sampled."""
    out = args.out
    n = args.webhooks
    args.worker_module, args.worker_threads, args.keep_logs, args.timeout = "bench.timeline", None, False, 60.0
    args.idle_gap = 0.05
    for name in ("worker-timeline.log", "ingest-timeline.log"):
        (out / name).unlink(missing_ok=True)
    os.environ["BENCH_TIMELINE"] = str(out / "worker-timeline.log")
    ingest_log = timeline.instrument_ingest(out / "ingest-timeline.log")
    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-profile-")
        database_url = normalise_database_url(args.database_url)
        redis = private_redis(stack)
        handler = Handler(stack, (n + 1) * (2 * args.rounds + 2) + 4 * args.latency_events + 16)
        app = stack.enter_context(prepared_app(database_url, redis.url, reset=args.reset))
        tenant = make_tenant(handler.url, {"burst": n, "latency": 1, "warmup": 1})
        worker = bench_delivery.start_idle_worker(stack, args, database_url, redis.url, tmp)
        bench = bench_delivery.DeliveryBench(args, app, handler, tenant, worker)
        bench.ingest("warmup")
        bench.wait_recorded("warmup", 1)
        stats = Statistics(database_url, out)

        stats.reset()
        bursts = []
        for _ in range(args.rounds):
            bursts.append(bench.engine_burst())
            time.sleep(0.2)
        stats.report("burst", n * args.rounds, "delivery")
        cpu = [b.cpu["children_cpu"] / n * 1000 for b in bursts]
        print(f"worker CPU per delivery, unprofiled: {', '.join(f'{c:.2f}' for c in cpu)} ms; "
              f"deliveries/s {', '.join(f'{b.rate(n):.0f}' for b in bursts)}")  # fmt: skip
        with sampled(out, "worker-burst", worker.pid):
            for _ in range(args.rounds):
                bench.engine_burst()
                time.sleep(0.2)

        with sampled(out, "worker-idle", worker.pid):
            meter = CpuMeter([worker.pid])
            bench.engine_latency()
            sampled_cpu = meter.stop()["children_cpu"] / args.latency_events * 1000
        print(f"worker CPU per idle delivery, sampled: {sampled_cpu:.2f} ms")
        before = tree_cpu(worker.pid)
        time.sleep(5)
        print(f"worker CPU idle, ms per second: {cpu_split(before, tree_cpu(worker.pid), 5)}")
        with sampled(out, "worker-background", worker.pid):  # no events: what an idle worker does
            time.sleep(5)
        stats.reset()
        timeline.start_worker_log(worker.pid)
        ingest_log.on = True
        base = handler.count
        before = tree_cpu(worker.pid)
        meter = CpuMeter([worker.pid])
        latency = bench.engine_latency()
        idle_cpu = meter.stop()["children_cpu"] / args.latency_events * 1000
        print(f"worker CPU per idle delivery: {cpu_split(before, tree_cpu(worker.pid), args.latency_events)}")
        ingest_log.on = False
        stats.report("idle", args.latency_events, "delivery")
        arrivals = handler.arrivals(base, base + args.latency_events)
        print(f"worker CPU per idle delivery, unprofiled: {idle_cpu:.2f} ms; handler receives p50 "
              f"{statistics.median(latency['arrival']):.2f} ms after the ingest call")  # fmt: skip
    print("\nIdle path, ms after the ingest call starts (median; step: median from the point before)")
    rows = timeline.spans(timeline.read(out / "ingest-timeline.log"), timeline.read(out / "worker-timeline.log"),
                          arrivals)  # fmt: skip
    for name, at, step in rows:
        print(f"  {name:<38} {at:7.2f}  {step:+7.2f}")


def ingest(args: argparse.Namespace) -> None:
    """The app and the bare endpoint under load, each unprofiled then sampled."""
    out = args.out
    args.worker_class, args.warmup, args.keep_logs, args.timeout, args.app = "gthread", 2.0, False, 30.0, "wsgi:app"
    from webhookapp.infra.extensions import db

    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-profile-")
        database_url = normalise_database_url(args.database_url)
        redis = private_redis(stack)
        stack.enter_context(prepared_app(database_url, redis.url, reset=args.reset))
        tenant = make_tenant("http://127.0.0.1:9", {"events": args.webhooks})
        product_id, token = tenant.products["events"].id, tenant.plain_token
        db.session.remove()
        env = engine_env(database_url, redis.url)
        servers: dict[str, tuple[Child, str]] = {}
        for name, target, path in (("app", "wsgi:app", "/public/v1/events"), ("bare", "bench.bare_app:app", "/events")):
            port = free_port()
            child = cast(Child, bench_ingest.gunicorn(stack, f"gunicorn-{name}", target, port, env, args, tmp))
            servers[name] = (child, f"http://127.0.0.1:{port}{path}")
        for child, url in servers.values():
            bench_ingest.wait_ready(url, child, args.timeout)
        body = json.dumps({"object_class": "fulfillment_request", "product_id": product_id})
        headers = {"Content-Type": "application/json"}
        stats = Statistics(database_url, out)
        for name, (child, url) in servers.items():
            auth = {"Authorization": f"ApiKey {token}"} if name == "app" else {}
            if name == "app":
                stats.reset()
                before = stats.events()
            with activity(database_url) if name == "app" else contextlib.nullcontext():
                result = bench_ingest.load(name, url, {**headers, **auth}, body.encode(), 202, args, child.pid)
            cpu = {key: value / result.ok * 1000 for key, value in result.cpu.items()}
            print(f"\n{name}: {result.rate:.0f} events/s, {result.errors} errors; per event: server CPU "
                  f"{cpu['children_cpu']:.3f} ms, PostgreSQL CPU {cpu['database_cpu']:.3f} ms (all postgres), "
                  f"client {cpu['own_cpu']:.3f} ms; machine busy {result.cpu['machine_busy']:.0%}")  # fmt: skip
            if name == "app":
                # Per event stored in the phase, warm-up included, as the statistics are.
                stats.report("ingest", stats.events() - before, "event")
            with sampled(out, f"web-{name}", child.pid, subprocesses=True):
                sampled_run = bench_ingest.load(name, url, {**headers, **auth}, body.encode(), 202, args, child.pid)
            print(f"{name}, sampled: {sampled_run.ok} events in {args.duration:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("delivery", "ingest"):
        command = sub.add_parser(name)
        command.add_argument("--database-url", required=True, help="PostgreSQL with pg_stat_statements")
        command.add_argument("--out", type=Path, required=True, help="directory for the profiles")
        command.add_argument("--reset", action="store_true", help="drop tables an interrupted run left")
    sub.choices["delivery"].add_argument("--webhooks", type=int, default=500)
    sub.choices["delivery"].add_argument("--rounds", type=int, default=5)
    sub.choices["delivery"].add_argument("--latency-events", type=int, default=50)
    for option, default in (("--duration", 8.0), ("--client-threads", 8), ("--workers", 2), ("--threads", 4),
                            ("--webhooks", 10)):  # fmt: skip
        sub.choices["ingest"].add_argument(option, type=type(default), default=default)
    summary = sub.add_parser("summary", help="split a profile by stage")
    summary.add_argument("profile", type=Path)
    summary.add_argument("--per", type=int, default=1, help="deliveries or events the profile covers")
    summary.add_argument("--rate", type=int, default=250, help="py-spy's samples per second (250)")
    args = parser.parse_args(argv)
    if args.command == "summary":
        summarise(args.profile, args.per, args.rate)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (delivery if args.command == "delivery" else ingest)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
