"""The details page's chart on a big database (docs/architecture.md, "Scale"), in this process:
the heavy webhook's 7-day chart cold (no hour summed: the read sums 167 hours of its attempts
and stores them) and warm (168 stored rows and the live hours), and the hourly job summing every
webhook's last 7 days at once (its first run) and one hour (its steady state).

    .venv/bin/python -m bench.scale_chart --url postgresql+psycopg://postgres@127.0.0.1:5432/scale_big [--size 1]

It loads the data set of ``--size`` first if the database does not hold it (:mod:`bench.scale_data`);
``bench.scale`` prints the same rows in its "Engine, in process" table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from sqlalchemy import delete, func, select, text

from bench import scale_data
from bench.common import percentile, print_table, run_main
from bench.scale_timing import app_on


def chart_report(url: str, repeat: int = 20) -> list[list[str]]:
    """Table rows: the chart's read times and the hourly job's, as described above."""
    from webhookapp.core.times import utcnow
    from webhookapp.engine.maintenance import hourly
    from webhookapp.infra.extensions import db
    from webhookapp.models import Attempt, AttemptHour, Webhook
    from webhookapp.services import webhook_stats

    def forget_sums() -> None:
        db.session.execute(delete(AttemptHour))
        db.session.commit()

    def timed(work) -> float:
        began = time.perf_counter()
        work()
        return (time.perf_counter() - began) * 1000

    with app_on(url):
        heavy = db.session.get(Webhook, scale_data.HEAVY_WEBHOOK)
        week = utcnow() - hourly.WINDOW_HOURS * hourly.HOUR
        in_week = db.session.scalar(
            select(func.count()).select_from(Attempt).where(Attempt.webhook_id == heavy.id, Attempt.started_at >= week)
        )
        everyone = db.session.scalar(select(func.count()).select_from(Attempt).where(Attempt.started_at >= week))
        forget_sums()
        cold = [timed(lambda: webhook_stats.chart(heavy, "7d"))]
        for _ in range(2):  # cold again, with the table's pages cached
            forget_sums()
            cold.append(timed(lambda: webhook_stats.chart(heavy, "7d")))
        warm = [timed(lambda: webhook_stats.chart(heavy, "7d")) for _ in range(repeat)]
        day = [timed(lambda: webhook_stats.chart(heavy, "24h")) for _ in range(repeat)]
        forget_sums()
        began = time.monotonic()
        hours = hourly.sum_settled()
        job_week = time.monotonic() - began
        rows = db.session.scalar(select(func.count()).select_from(AttemptHour))
        one_hour = hourly.floor_hour(utcnow()) - 24 * hourly.HOUR
        job_hour = timed(lambda: hourly.sum_hour(one_hour))
        size = db.session.execute(text("SELECT avg(pg_column_size(h.*)) FROM attempt_hours h")).scalar()
    return [
        [f"chart, 7 days, cold ({in_week:,} attempts of the heavy webhook: 167 hours summed)",
         f"{cold[0]:.0f} ms first, {statistics.median(cold[1:]):.0f} ms cached"],
        ["chart, 7 days, warm (168 stored hours + live), p50 / p95",
         f"{statistics.median(warm):.1f} / {percentile(warm, 0.95):.1f} ms"],
        ["chart, 24 hours, warm, p50 / p95", f"{statistics.median(day):.1f} / {percentile(day, 0.95):.1f} ms"],
        [f"hourly job, first run: {hours} hours of every webhook ({everyone:,} attempts)",
         f"{job_week:.1f} s, {rows:,} rows of {size:.0f} bytes"],
        ["hourly job, one hour of every webhook", f"{job_hour:.0f} ms"],
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if scale_data.loaded_size(args.url) != args.size:
        print(f"loading size {args.size:g} …", flush=True)
        scale_data.load(args.url, args.size, say=lambda line: print(line, flush=True))
    print_table(f"The chart (size {args.size:g})", ["what", "time"], chart_report(args.url, args.repeat))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="PostgreSQL URL of a database of your own")
    parser.add_argument("--size", type=float, default=1.0, help="the data set's size (1 = 10 M attempts)")
    parser.add_argument("--repeat", type=int, default=20, help="timed warm reads (20)")
    return run_main(run, parser.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
