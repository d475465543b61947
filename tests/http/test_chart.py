"""The details page's chart: attempts summed per hour (by the hourly job, or on read when no worker
did), the live hours, pruning and purging the sums, percentiles from buckets, and the page's SVG
and table (docs/architecture.md, "Scale")."""

from __future__ import annotations

import math
import random
import re
import threading
from datetime import datetime, timedelta

import pytest
from rq import Queue
from sqlalchemy import delete, func, select

from tests.conftest import make_webhook
from tests.engine import run_worker
from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, maintenance
from webhookapp.engine.maintenance import hourly
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, AttemptHour
from webhookapp.services import webhook_changes as service
from webhookapp.services import webhook_stats
from workers.__main__ import run_cron

HOUR = timedelta(hours=1)
# Durations on, just above and far from the bucket bounds, and past the last one.
DURATIONS = [0.0, 3.5, 10.0, 10.01, 19.99, 20.0, 75.0, 299.0, 1_000.0, 1_000.5, 45_000.0, 300_000.0, 301_000.0]


def add(hook_id: str, at: datetime, durations: list[float], *, fail_every: int = 3) -> None:
    db.session.add_all(
        Attempt(webhook_id=hook_id, started_at=at + timedelta(seconds=n), duration_ms=ms,
                success=(n + 1) % fail_every != 0, request_method="POST", request_url="https://h.test/",
                request_headers={})
        for n, ms in enumerate(durations)
    )  # fmt: skip
    db.session.commit()


def direct_count(hook_id: str, hour: datetime) -> tuple[int, int, list[int]]:
    """Successes, failures and bucket counts of the hour, from the attempts themselves."""
    rows = db.session.execute(
        select(Attempt.success, Attempt.duration_ms).where(
            Attempt.webhook_id == hook_id, Attempt.started_at >= hour, Attempt.started_at < hour + HOUR
        )
    ).all()
    buckets = [0] * hourly.BUCKETS
    for _, ms in rows:
        buckets[hourly.bucket_of(ms)] += 1
    return sum(ok for ok, _ in rows), sum(not ok for ok, _ in rows), buckets


def stored(hook_id: str) -> dict[datetime, tuple[int, int, list[int]]]:
    db.session.expire_all()
    rows = db.session.scalars(select(AttemptHour).where(AttemptHour.webhook_id == hook_id)).all()
    return {row.hour: (row.successes, row.failures, hourly.padded(row.duration_buckets)) for row in rows}


@pytest.fixture
def now() -> datetime:
    """A fixed moment 20 minutes into an hour: the hour before it is settled (7 minutes)."""
    return hourly.floor_hour(utcnow()) - 2 * HOUR + timedelta(minutes=20)


# -- summing ---------------------------------------------------------------------------------


def test_summing_matches_a_direct_count_of_the_attempts(app, vendor, now):
    hook, other = make_webhook(vendor), make_webhook(vendor, label="Other")
    this_hour = hourly.floor_hour(now)
    for back in (1, 2, 5):
        add(hook.id, this_hour - back * HOUR + timedelta(minutes=back), DURATIONS * back)
    add(other.id, this_hour - 2 * HOUR, [5.0, 500.0], fail_every=1)

    assert hourly.sum_settled(now) == hourly.WINDOW_HOURS

    rows = stored(hook.id)
    assert sorted(rows) == [this_hour - back * HOUR for back in (5, 2, 1)]  # hours without attempts: no row
    for hour, row in rows.items():
        assert row == direct_count(hook.id, hour)
    assert rows[this_hour - HOUR][:2] == (9, 4) and sum(rows[this_hour - HOUR][2]) == len(DURATIONS)
    assert stored(other.id) == {this_hour - 2 * HOUR: (0, 2, direct_count(other.id, this_hour - 2 * HOUR)[2])}
    raw = db.session.scalars(select(AttemptHour.duration_buckets).where(AttemptHour.webhook_id == other.id)).one()
    assert raw == [1] + [0] * 8 + [1]  # 5 ms and 500 ms: no trailing zeros stored
    markers = stored(hourly.EVERY_WEBHOOK)
    assert len(markers) == hourly.WINDOW_HOURS and max(markers) == this_hour - HOUR


def test_the_sql_buckets_agree_with_the_bounds(app, vendor, now):
    hook = make_webhook(vendor)
    hour = hourly.floor_hour(now) - 3 * HOUR
    add(hook.id, hour, DURATIONS)
    summed = hourly.sum_range(hour, hour + HOUR, hook.id)[(hook.id, hour)]
    expected = [0] * hourly.BUCKETS
    for ms in DURATIONS:
        expected[hourly.bucket_of(ms)] += 1
    assert summed.buckets == expected
    assert hourly.bucket_of(10.0) == 0 and hourly.bucket_of(10.01) == 1 and hourly.bucket_of(301_000) == 25


def test_summing_again_gives_the_same_rows(app, vendor, now):
    hook = make_webhook(vendor)
    hour = hourly.floor_hour(now) - 3 * HOUR
    add(hook.id, hour, DURATIONS)
    hourly.sum_hour(hour)
    first = stored(hook.id)
    raw = db.session.scalars(select(AttemptHour.duration_buckets).where(AttemptHour.webhook_id == hook.id)).one()
    assert len(raw) == hourly.BUCKETS and raw[-1] == 1  # trailing zeros are not stored; here there are none
    hourly.sum_hour(hour)
    assert stored(hook.id) == first
    db.session.execute(delete(AttemptHour).where(AttemptHour.webhook_id == hourly.EVERY_WEBHOOK))
    db.session.commit()
    assert hourly.sum_settled(now) == hourly.WINDOW_HOURS  # every hour summed again
    assert stored(hook.id) == first
    count = select(func.count()).select_from(AttemptHour).where(AttemptHour.webhook_id == hook.id)
    assert db.session.scalar(count) == 1


def test_the_job_carries_on_from_the_last_hour_it_summed(app, vendor, now):
    hook = make_webhook(vendor)
    assert hourly.sum_settled(now) == hourly.WINDOW_HOURS
    later = now + 3 * HOUR
    add(hook.id, hourly.floor_hour(later) - HOUR, [50.0, 60.0])
    assert hourly.sum_settled(later) == 3
    assert hourly.sum_settled(later) == 0
    assert stored(hook.id) == {hourly.floor_hour(later) - HOUR: direct_count(hook.id, hourly.floor_hour(later) - HOUR)}


def test_one_worker_sums_at_a_time(app, vendor, now):
    other_worker = maintenance.take_lease(hourly.SUM_LEASE)
    assert other_worker is not None
    assert hourly.sum_settled(now) is None and stored(hourly.EVERY_WEBHOOK) == {}
    maintenance.release_lease(hourly.SUM_LEASE, other_worker)
    assert hourly.sum_settled(now) == hourly.WINDOW_HOURS


def test_the_cron_queues_the_hourly_job_and_a_worker_runs_it(app, vendor):
    queue = Queue(dispatch.QUEUE_NAME, connection=dispatch.redis_connection())
    stop = threading.Event()
    cron = threading.Thread(target=run_cron, args=(app, stop, 60), daemon=True)
    cron.start()
    try:
        for _ in range(100):
            if len(queue) >= 3:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        cron.join(timeout=10)
    assert "webhookapp.engine.jobs.sum_hours" in {job.func_name for job in queue.get_jobs()}

    hook = make_webhook(vendor)
    hour = hourly.floor_hour(utcnow() - hourly.settle_time()) - HOUR
    add(hook.id, hour, [42.0, 420.0])
    queue.empty()
    queue.enqueue("webhookapp.engine.jobs.sum_hours")
    run_worker(app)
    assert stored(hook.id) == {hour: direct_count(hook.id, hour)}


# -- reading ---------------------------------------------------------------------------------


def test_the_chart_fills_missing_hours_on_read_when_no_worker_ran(app, vendor, now):
    hook = make_webhook(vendor)
    this_hour = hourly.floor_hour(now)
    add(hook.id, this_hour - 4 * HOUR, [15.0] * 9 + [900.0], fail_every=5)
    add(hook.id, this_hour - 30 * HOUR, [15.0])  # outside 24 hours

    chart = webhook_stats.chart(hook, "24h", now)

    assert len(chart.hours) == 24 and chart.hours[-1].hour == this_hour
    busy = chart.hours[-5]
    assert (busy.hour, busy.successes, busy.failures) == (this_hour - 4 * HOUR, 8, 2)
    assert 10 <= busy.p50 <= 20 and 750 <= busy.p95 <= 1000
    assert (chart.successes, chart.failures) == (8, 2)
    rows = stored(hook.id)
    assert len(rows) == 23  # every settled hour of the window, zero rows included; none live
    assert rows[this_hour - 4 * HOUR] == direct_count(hook.id, this_hour - 4 * HOUR)

    # Read again: the stored sums are used, not the attempts.
    db.session.execute(delete(Attempt).where(Attempt.webhook_id == hook.id))
    db.session.commit()
    again = webhook_stats.chart(hook, "24h", now)
    assert (again.successes, again.failures) == (8, 2)


def test_hours_not_settled_are_read_live_and_not_stored(app, vendor):
    hook = make_webhook(vendor)
    now = hourly.floor_hour(utcnow()) - HOUR + timedelta(minutes=3)  # the hour before is not settled yet
    add(hook.id, hourly.floor_hour(now) - timedelta(minutes=2), [30.0, 40.0])
    add(hook.id, hourly.floor_hour(now) + timedelta(minutes=1), [50.0], fail_every=1)

    chart = webhook_stats.chart(hook, "24h", now)

    assert [(h.successes, h.failures) for h in chart.hours[-2:]] == [(2, 0), (0, 1)]
    rows = stored(hook.id)
    assert hourly.floor_hour(now) - HOUR not in rows and hourly.floor_hour(now) not in rows
    add(hook.id, hourly.floor_hour(now) + timedelta(minutes=2), [60.0])
    assert webhook_stats.chart(hook, "24h", now).hours[-1].total == 2  # live: the newest attempt counts


def test_hours_the_job_marked_are_not_summed_again_on_read(app, vendor, now):
    hook = make_webhook(vendor)
    hourly.sum_settled(now)
    add(hook.id, hourly.floor_hour(now) - 3 * HOUR, [20.0])  # too late for the marked hour: not read
    assert webhook_stats.chart(hook, "24h", now).total == 0
    assert stored(hook.id) == {}


# -- pruning and purging ---------------------------------------------------------------------


def test_pruning_removes_hourly_sums_past_the_retention(app, vendor):
    app.config.update(WEBHOOK_ATTEMPT_RETENTION_DAYS=2)
    hook = make_webhook(vendor)
    old, recent = hourly.floor_hour(utcnow()) - 60 * HOUR, hourly.floor_hour(utcnow()) - 10 * HOUR
    for hour in (old, recent):
        hourly.store([(hook.id, hourly.HourSum(hour, 1, 0)), (hourly.EVERY_WEBHOOK, hourly.HourSum(hour))])
    db.session.commit()
    assert maintenance.prune() == {
        "attempts": 0,
        "events": 0,
        "event_feeds": 0,
        "audit_entries": 0,
        "attempt_hours": 2,
        "deleted_webhook_attempts": 0,
    }
    assert list(stored(hook.id)) == [recent] and list(stored(hourly.EVERY_WEBHOOK)) == [recent]


def test_hourly_sums_are_kept_no_longer_than_the_chart_reads_them(app, vendor):
    assert maintenance.HOURLY_SUMS_KEPT >= hourly.WINDOW_HOURS * HOUR
    hook = make_webhook(vendor)
    this_hour = hourly.floor_hour(utcnow())
    hours = [this_hour - days * 24 * HOUR for days in (20, 10, 9, 7)]
    hourly.store([(hook.id, hourly.HourSum(hour, 1, 0)) for hour in hours])
    db.session.commit()
    assert maintenance.prune()["attempt_hours"] == 3  # retention 30 days: the chart's window decides
    assert list(stored(hook.id)) == [this_hour - 7 * 24 * HOUR]


def test_purging_a_deleted_webhook_removes_its_hourly_sums(app, vendor, now):
    hook, other = make_webhook(vendor), make_webhook(vendor, label="Other")
    hour = hourly.floor_hour(now) - 3 * HOUR
    add(hook.id, hour, [10.0, 20.0])
    add(other.id, hour, [10.0])
    hourly.sum_hour(hour)
    gone = hook.id
    service.delete_webhook(hook)
    assert maintenance.purge_deleted(gone) == 2
    assert stored(gone) == {} and len(stored(other.id)) == 1


def test_the_job_does_not_sum_a_webhook_being_purged(app, vendor, now):
    hook = make_webhook(vendor)
    hour = hourly.floor_hour(now) - 3 * HOUR
    add(hook.id, hour, [10.0])
    gone = hook.id
    service.delete_webhook(hook)
    hourly.sum_hour(hour)
    assert stored(gone) == {}


# -- percentiles -----------------------------------------------------------------------------


def test_percentiles_from_buckets_lie_within_the_true_values_bucket():
    rng = random.Random(7)
    for _ in range(200):
        durations = [rng.lognormvariate(5, 2) for _ in range(rng.randint(1, 300))]
        buckets = [0] * hourly.BUCKETS
        for ms in durations:
            buckets[hourly.bucket_of(ms)] += 1
        ordered = sorted(durations)
        for fraction in (0.5, 0.95):
            true = ordered[math.ceil(fraction * len(ordered)) - 1]  # nearest rank: the ⌈q·n⌉-th
            estimate = hourly.percentile(buckets, fraction)
            index = hourly.bucket_of(true)
            low = hourly.BOUNDS_MS[index - 1] if index else 0.0
            high = hourly.BOUNDS_MS[index] if index < len(hourly.BOUNDS_MS) else low
            assert low <= estimate <= high
            if true > 10 and index < len(hourly.BOUNDS_MS):
                assert true / 2 <= estimate <= true * 2


def test_percentiles_of_nothing_and_of_the_overflow():
    assert hourly.percentile([0] * hourly.BUCKETS, 0.5) is None
    only_slow = [0] * hourly.BUCKETS
    only_slow[-1] = 3
    assert hourly.percentile(only_slow, 0.95) == 300_000
    one = [0] * hourly.BUCKETS
    one[1] = 1  # one attempt between 10 and 20 ms
    assert hourly.percentile(one, 0.5) == 15


# -- the page --------------------------------------------------------------------------------


def bars(html: str) -> int:
    return html.count('<g class="chart-hour">')


def test_the_statistics_tab_draws_the_chart_and_its_table(client, auth, vendor):
    hook = make_webhook(vendor)
    this_hour = hourly.floor_hour(utcnow())
    add(hook.id, this_hour - 5 * HOUR, [120.0] * 7)  # 5 successes, 2 failures
    add(hook.id, this_hour, [80.0], fail_every=1000)  # live
    auth.login()

    html = client.get(f"/webhooks/{hook.id}").get_data(as_text=True)

    assert '<div id="chart" class="chart">' in html
    assert re.search(r'<svg class="chart-svg" role="img" aria-labelledby="chart-title chart-desc"', html)
    assert bars(html) == 24
    assert html.count('class="chart-ok"') == 2 and html.count('class="chart-bad"') == 1
    assert "Last 24 hours: 8 delivery attempts, 6 succeeded and 2 failed" in html
    hour_text = (this_hour - 5 * HOUR).strftime("%Y-%m-%d %H:00 UTC")
    assert f'<tr><th scope="row">{hour_text}</th><td>5</td><td>2</td><td>125 ms</td><td>148 ms</td></tr>' in html
    assert '<tfoot><tr><th scope="row">Total</th><td>6</td><td>2</td>' in html
    assert "style=" not in html.split('<div id="chart"')[1]
    assert '<a href="/webhooks/' + hook.id + '?tab=statistics&amp;span=7d">Last 7 days</a>' in html


def test_seven_days_and_a_garbage_span(client, auth, vendor):
    hook = make_webhook(vendor)
    add(hook.id, hourly.floor_hour(utcnow()) - 100 * HOUR, [60.0, 70.0])
    auth.login()
    week = client.get(f"/webhooks/{hook.id}?tab=statistics&span=7d").get_data(as_text=True)
    assert bars(week) == 168 and week.count('class="chart-ok"') == 1
    assert 'span=7d" aria-current="page">Last 7 days' in week
    day = client.get(f"/webhooks/{hook.id}?tab=statistics&span=junk").get_data(as_text=True)
    assert "No delivery attempts in the last 24 hours." in day and "<svg" not in day
    assert 'span=24h" aria-current="page">Last 24 hours' in day


def test_the_chart_of_another_accounts_webhook_is_404(client, auth, vendor, other_vendor):
    hook = make_webhook(other_vendor)
    auth.login()
    assert client.get(f"/webhooks/{hook.id}?tab=statistics&span=7d").status_code == 404
