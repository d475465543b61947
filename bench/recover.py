"""Recover benchmark: a recovery beside normal load, and a large recovery's timing.

    .venv/bin/python -m bench.recover [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_recover]
                                      [--beside 10000] [--large 100000] [--rate 1000] [--samples 150]

Prints, for the other webhooks, the p50 (and p90) of ingest-to-handler latency without a
recovery, while a recovery of ``--beside`` failed triggers runs, and without one again, and their
ratio (target: below 2); then how long a recovery of ``--large`` failed triggers takes.

* Two worker processes (``python -m workers``, one with the cron jobs), as a small deployment
  runs; every recovery request and delivery goes to a fast local handler process of its own, so
  each handler's arrival times belong to one kind of traffic.
* Normal load: one event every ``--load-gap`` seconds to a product with ``--load-webhooks``
  webhooks, from a thread, all along.
* Latency: one event at a time to a product with one webhook; each waits for the handler, then
  ``--gap`` seconds. Latency = handler arrival minus ``time.time()`` before the ingest call.
* The failed triggers are attempt rows written straight into the database (one failed attempt
  per trigger, a second apart), as a broken handler would have left them.
* ``--rate`` is ``WEBHOOK_RECOVER_RATE`` for the workers: the default, 1000, is above what one
  worker sends, so the figures show a recovery as fast as it goes, the worst case for the others.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from datetime import timedelta

from sqlalchemy import update

from bench.common import (
    Handler,
    add_common_options,
    database_counts,
    describe_database,
    engine_env,
    make_tenant,
    percentile,
    prepared_app,
    print_table,
    private_redis,
    run_main,
    start_child,
    temp_dir,
    verdict,
    wait_until,
)
from webhookapp.infra.config import normalise_database_url

RATIO_TARGET = 2.0
SEED_BATCH = 5000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.recover", description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--beside", type=int, default=10_000, help="failed triggers recovered beside load (10000)")
    parser.add_argument("--large", type=int, default=100_000, help="failed triggers of the timed recovery (100000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="WEBHOOK_RECOVER_RATE for the workers (1000)")
    parser.add_argument("--samples", type=int, default=150, help="latency events per phase (150)")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between latency events (0.05)")
    parser.add_argument("--load-webhooks", type=int, default=20, help="webhooks the load events match (20)")
    parser.add_argument("--load-gap", type=float, default=0.1, help="seconds between load events (0.1)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds any single wait may take (1800)")
    return parser.parse_args(argv)


def seed_failures(webhook_id: str, count: int) -> None:
    """``count`` failed triggers of one attempt each, ending a minute ago, in batches."""
    from sqlalchemy import insert

    from webhookapp.core.times import utcnow
    from webhookapp.infra.extensions import db
    from webhookapp.models import Attempt

    first = utcnow() - timedelta(seconds=count + 60)
    for start in range(0, count, SEED_BATCH):
        rows = [
            {"webhook_id": webhook_id, "kind": "trigger", "number": 1, "started_at": first + timedelta(seconds=i),
             "duration_ms": 3.0, "success": False, "request_method": "POST", "request_url": "http://down.invalid/",
             "request_headers": {}, "response_status": 503, "response_truncated": False}
            for i in range(start, min(start + SEED_BATCH, count))
        ]  # fmt: skip
        db.session.execute(insert(Attempt), rows)
        db.session.commit()


class Load:
    """Events to the load product every ``gap`` seconds from a thread, until stopped."""

    def __init__(self, app, authorization: str, product_id: str, gap: float):
        self.app, self.authorization, self.product_id, self.gap = app, authorization, product_id, gap
        self.stopping = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from webhookapp.engine import ingest, runtime

        with self.app.app_context():
            groups = runtime.of(self.app).group_commit
            body = {"object_class": "fulfillment_request", "product_id": self.product_id}
            while not self.stopping.wait(self.gap):
                ingest.ingest_as(self.authorization, body, groups)
                self.sent += 1

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)


def latencies(app, authorization: str, product_id: str, handler: Handler, args, until=None) -> list[float]:
    """One event at a time to the latency webhook: ms from the ingest call to its handler; at most
    ``--samples`` of them, fewer if ``until()`` turns true first."""
    from webhookapp.engine import ingest, runtime

    groups = runtime.of(app).group_commit
    body = {"object_class": "fulfillment_request", "product_id": product_id}
    samples: list[float] = []
    for _ in range(args.samples):
        if until is not None and until():
            break
        base = handler.count
        start = time.time()
        ingest.ingest_as(authorization, body, groups)
        handler.wait_count(base + 1, 60)
        samples.append((handler.arrival(base) - start) * 1000)
        time.sleep(args.gap)
    return samples


def recovery_state(db, recovery_id: int) -> tuple[str, int]:
    row = database_counts(db, "SELECT state, sent FROM recoveries WHERE id = :id", id=recovery_id)
    return str(row[0]), int(row[1])


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        tmp = temp_dir(stack, "webhookapp-bench-recover-")
        database_url = normalise_database_url(args.database_url or f"sqlite:///{tmp / 'bench.sqlite'}")
        redis = private_redis(stack)
        recovered = Handler(stack, args.beside + args.large + 100)
        others = Handler(stack, 200_000)
        probe = Handler(stack, 4 * args.samples + 50)
        app = stack.enter_context(prepared_app(database_url, redis.url, reset=args.reset))
        from webhookapp.infra.extensions import db
        from webhookapp.models import Webhook
        from webhookapp.services import recoveries

        tenant = make_tenant(recovered.url, {"beside": 1, "large": 1, "load": args.load_webhooks, "latency": 1})
        for product, handler in (("load", others), ("latency", probe)):  # each kind of traffic to its own handler
            product_id = tenant.products[product].id
            db.session.execute(update(Webhook).where(Webhook.product_id == product_id).values(external_url=handler.url))
        db.session.commit()
        seeding = time.monotonic()
        seed_failures(tenant.webhook_ids["beside"][0], args.beside)
        seed_failures(tenant.webhook_ids["large"][0], args.large)
        seeded = time.monotonic() - seeding
        env = engine_env(database_url, redis.url, WEBHOOK_RECOVER_RATE=args.rate)
        workers = [
            start_child(stack, "worker-1", [sys.executable, "-m", "workers"], env, tmp, show_log=args.keep_logs),
            start_child(stack, "worker-2", [sys.executable, "-m", "workers", "--no-cron"], env, tmp,
                        show_log=args.keep_logs),
        ]  # fmt: skip
        print(
            f"webhookapp recover benchmark: {describe_database(database_url)}, 2 worker processes, "
            f"WEBHOOK_RECOVER_RATE={args.rate:g}, load: an event to {args.load_webhooks} webhooks every "
            f"{args.load_gap:g} s; {args.beside + args.large:,} failed attempts seeded in {seeded:.1f} s",
            flush=True,
        )
        auth = lambda tenant_: f"ApiKey {tenant_.plain_token}"  # noqa: E731
        latency_product = tenant.products["latency"].id

        def measure(until=None) -> list[float]:
            for worker in workers:
                worker.check_alive()
            return latencies(app, auth(tenant), latency_product, probe, args, until)

        with Load(app, auth(tenant), tenant.products["load"].id, args.load_gap) as background:
            measure()  # warm-up: pools and connections
            before = measure()
            beside = recoveries.start(db.session.get(Webhook, tenant.webhook_ids["beside"][0]), seeded_since(args))
            beside_id, started = beside.id, time.monotonic()
            during = measure(until=lambda: recovery_state(db, beside_id)[0] != "running")
            wait_until(lambda: recovery_state(db, beside_id)[0] != "running", args.timeout, "the recovery's end", 0.1)
            beside_seconds = time.monotonic() - started
            after = measure()
            load_events = background.sent
        beside_state = recovery_state(db, beside_id)

        large = recoveries.start(db.session.get(Webhook, tenant.webhook_ids["large"][0]), seeded_since(args))
        large_id, started = large.id, time.monotonic()
        wait_until(lambda: recovery_state(db, large_id)[0] != "running", args.timeout, "the large recovery", 0.2)
        large_seconds = time.monotonic() - started
        large_state = recovery_state(db, large_id)
        handled = recovered.count

    rows = [
        [name, len(samples), f"{statistics.median(samples):.1f}", f"{percentile(samples, 0.9):.1f}"]
        for name, samples in (("no recovery (before)", before), ("recovery running", during),
                              ("no recovery (after)", after))
    ]  # fmt: skip
    print_table("Other webhooks' ingest-to-handler latency, ms", ["phase", "events", "p50", "p90"], rows)
    ratio = statistics.median(during) / statistics.median(before + after)
    print(f"p50 with a recovery ÷ without: {ratio:.2f} (target < {RATIO_TARGET:g}) {verdict(ratio < RATIO_TARGET)}")
    print(f"load events posted meanwhile: {load_events}")
    print_table(
        "Recoveries",
        ["failed triggers", "state", "sent", "seconds", "sent/s"],
        [
            [f"{args.beside:,}", beside_state[0], f"{beside_state[1]:,}", f"{beside_seconds:.1f}",
             f"{beside_state[1] / beside_seconds:,.0f}"],
            [f"{args.large:,}", large_state[0], f"{large_state[1]:,}", f"{large_seconds:.1f}",
             f"{large_state[1] / large_seconds:,.0f}"],
        ],
    )  # fmt: skip
    print(f"requests at the recovered handler: {handled:,} (sent: {beside_state[1] + large_state[1]:,})")
    complete = beside_state == ("finished", args.beside) and large_state == ("finished", args.large)
    return 0 if complete and ratio < RATIO_TARGET else 1


def seeded_since(args: argparse.Namespace):
    """The start of a range holding every seeded attempt."""
    from webhookapp.core.times import utcnow

    return utcnow() - timedelta(seconds=max(args.beside, args.large) + 3600)


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
