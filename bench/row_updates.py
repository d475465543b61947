"""Row update benchmark: what a trigger's transition costs PostgreSQL on the ``webhooks`` row, against
the same change in a narrow table of its own.

    .venv/bin/python -m bench.row_updates --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
                                          [--webhooks 500] [--rounds 8]

Each delivery updates its webhook's row three times (the event makes the trigger due, the claim
leases it, the record releases it), and each changes an indexed column (``next_trigger_at``,
``lease_expires_at``), so none can be a HOT update: each writes new entries into every index of
``webhooks`` (docs/performance.md, "What stands between the figures and the targets"). This
times, for ``--webhooks`` rows in one statement and its commit (medians of ``--rounds``, the first
two left out):

* ``webhooks``: setting and clearing ``next_trigger_at`` (not HOT), and counting an event
  (``events_count``, HOT: no indexed column changes);
* a narrow table with the trigger's columns only (the id, ``next_trigger_at``, the lease, the
  attempt counts) and its two indexes beside the primary key, created here and dropped after:
  setting and clearing ``next_trigger_at``.

Its tables are created and dropped, as the other benchmarks do; PostgreSQL only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from sqlalchemy import text

from bench.common import make_tenant, prepared_app, print_table, run_main

NARROW = [
    "CREATE TABLE bench_narrow_triggers (id VARCHAR(32) PRIMARY KEY, next_trigger_at TIMESTAMP, "
    "lease_id VARCHAR(32), lease_expires_at TIMESTAMP, lease_attempt INTEGER NOT NULL DEFAULT 0, "
    "trigger_attempts INTEGER NOT NULL DEFAULT 0) WITH (fillfactor = 70)",
    "CREATE INDEX ix_bench_narrow_due ON bench_narrow_triggers (next_trigger_at, id) WHERE next_trigger_at IS NOT NULL",
    "CREATE INDEX ix_bench_narrow_lease ON bench_narrow_triggers (lease_expires_at)",
    "INSERT INTO bench_narrow_triggers (id) SELECT id FROM webhooks",
]
NOW = "now() AT TIME ZONE 'UTC'"
STATEMENTS = {
    "webhooks: make due (not HOT)": f"UPDATE webhooks SET next_trigger_at = {NOW}",
    "webhooks: clear due (not HOT)": "UPDATE webhooks SET next_trigger_at = NULL",
    "webhooks: count an event (HOT)": "UPDATE webhooks SET events_count = events_count + 1",
    "narrow table: make due": f"UPDATE bench_narrow_triggers SET next_trigger_at = {NOW}",
    "narrow table: clear due": "UPDATE bench_narrow_triggers SET next_trigger_at = NULL",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL of a database you own")
    parser.add_argument("--reset", action="store_true", help="drop tables an interrupted run left")
    parser.add_argument("--webhooks", type=int, default=500, help="rows updated by each statement (500)")
    parser.add_argument("--rounds", type=int, default=8, help="runs of each statement (8; the first two left out)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from webhookapp.infra.extensions import db

    if not args.database_url.startswith("postgresql"):
        raise SystemExit("bench.row_updates measures PostgreSQL: give --database-url postgresql+psycopg://…")
    with prepared_app(args.database_url, "redis://127.0.0.1:9/0", reset=args.reset):
        make_tenant("http://127.0.0.1:9", {"rows": args.webhooks})
        try:
            for sql in NARROW:
                db.session.execute(text(sql))
            db.session.commit()
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
            for _ in range(args.rounds):
                for name, sql in STATEMENTS.items():
                    start = time.perf_counter()
                    db.session.execute(text(sql))
                    db.session.commit()
                    times[name].append((time.perf_counter() - start) * 1000)
        finally:
            db.session.rollback()
            db.session.execute(text("DROP TABLE IF EXISTS bench_narrow_triggers"))
            db.session.commit()
        rows = []
        for name, values in times.items():
            median = statistics.median(values[2:] or values)
            rows.append([name, f"{median:.2f}", f"{median * 1000 / args.webhooks:.1f}"])
        title = f"One UPDATE of {args.webhooks} rows and its commit (median of {args.rounds} runs, the first two out)"
        print_table(title, ["statement", "ms", "µs per row"], rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
