"""PostgreSQL's side of ``bench.profile``: ``pg_stat_statements`` and ``pg_stat_wal`` over a
phase, and samples of ``pg_stat_activity`` (what the sessions wait for) while a block runs.

Needs ``shared_preload_libraries = 'pg_stat_statements'`` and the extension in the database;
``pg_stat_statements.track_planning = on`` for planning times, ``track_wal_io_timing = on`` for
the WAL flushes' time.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg

STATS = """
    SELECT calls, total_exec_time, total_plan_time, rows, shared_blks_hit, shared_blks_read, shared_blks_dirtied,
           wal_bytes, regexp_replace(query, '\\s+', ' ', 'g')
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time DESC LIMIT 12"""
WAL = "SELECT wal_records, wal_bytes, wal_write, wal_sync, wal_write_time, wal_sync_time FROM pg_stat_wal"


def _libpq_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://")


class Statistics:
    """pg_stat_statements and pg_stat_wal of the benchmark's database, over one phase."""

    def __init__(self, database_url: str, out: Path):
        url = _libpq_url(database_url)
        self.connection = psycopg.connect(url, autocommit=True)
        self.out = out

    def reset(self) -> None:
        self.connection.execute("SELECT pg_stat_statements_reset()")
        self.connection.execute("SELECT pg_stat_reset_shared('wal')")

    def events(self) -> int:
        """Events stored so far (the event API's phases count per event stored)."""
        row = self.connection.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def report(self, phase: str, per: int, unit: str) -> None:
        """Print the top statements per ``unit`` (``per`` of them in the phase), and save them as
        ``pgss-PHASE.json``."""
        rows = self.connection.execute(STATS).fetchall()
        wal = self.connection.execute(WAL).fetchone()
        assert wal is not None
        (self.out / f"pgss-{phase}.json").write_text(json.dumps({"per": per, "rows": rows, "wal": wal}, default=str))
        print(f"\npg_stat_statements, {phase}: {per} × {unit} (ms and rows per {unit}; mean ms per call)")
        header = ("exec ms", "plan ms", "mean", "rows", "hit", "read")
        print(f"{'calls/' + unit:>10} " + " ".join(f"{name:>8}" for name in header) + "  query")
        for calls, exec_ms, plan_ms, nrows, hit, read, _dirtied, _wal, query in rows:
            print(f"{calls / per:10.3f} {exec_ms / per:8.4f} {plan_ms / per:8.4f} {exec_ms / max(calls, 1):8.3f} "
                  f"{nrows / per:8.2f} {hit / per:8.1f} {read / per:8.2f}  {query[:110]}")  # fmt: skip
        records, wal_bytes, writes, syncs, write_ms, sync_ms = wal
        print(f"WAL per {unit}: {records / per:.1f} records, {float(wal_bytes) / per:,.0f} bytes, {writes / per:.2f} "
              f"writes ({write_ms / per:.3f} ms), {syncs / per:.2f} syncs ({sync_ms / per:.3f} ms)")  # fmt: skip


ACTIVITY = """
    SELECT state, COALESCE(wait_event_type || ':' || wait_event, 'on CPU') FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"""


@contextlib.contextmanager
def activity(database_url: str, every: float = 0.01) -> Iterator[None]:
    """Samples of what the database's other sessions are doing (pg_stat_activity) every ``every``
    seconds while the block runs; printed as shares of the samples of active sessions."""
    url = _libpq_url(database_url)
    counts: Counter[str] = Counter()
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            while not stop.wait(every):
                for state, wait in connection.execute(ACTIVITY).fetchall():
                    counts["idle (between statements)" if state == "idle" else wait] += 1

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    active = sum(n for key, n in counts.items() if not key.startswith("idle"))
    print("PostgreSQL sessions, sampled every 10 ms (shares of active samples): " + ", ".join(
        f"{key} {n / max(active, 1):.0%}" if not key.startswith("idle") else f"{key}: {n} samples"
        for key, n in counts.most_common(8)))  # fmt: skip
