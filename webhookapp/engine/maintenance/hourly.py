"""Attempts summed per webhook and hour (docs/architecture.md, "Scale"): what the details page's
chart reads, so that a week costs at most 168 rows however many attempts it holds.

An hour is summed once it is *settled*: over, and past the longest time an attempt that began
in it may take to be recorded (:func:`settle_time`; an attempt's ``started_at`` is when it
began, and it is written when it ends). Summing an hour is one ``GROUP BY`` over its attempts
(per webhook and duration bucket) upserted into ``attempt_hours``: summing it again gives the
same rows. Two paths sum:

* :func:`sum_settled`, the hourly job, sums every webhook's settled hours since the last hour
  it summed (within the chart's longest window), one hour per transaction, under a lease. Each
  hour it sums gets a *marker* row (webhook id :data:`EVERY_WEBHOOK`): a webhook without a row
  in a marked hour had no attempts then.
* :func:`hours_of`, on read, sums the settled hours of one webhook that have neither its row nor
  a marker (no worker ran the job), stores them (zero rows included), and reads the hours not
  yet settled live from the attempts (one hour and the settle time: bounded).

Durations are counted in fixed buckets (:data:`BOUNDS_MS`), so medians and percentiles of any
span add up from its hours (:func:`percentile`).
"""

from __future__ import annotations

import bisect
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import BigInteger, ColumnElement, Integer, case, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite

from webhookapp.core.times import utcnow
from webhookapp.engine import maintenance
from webhookapp.engine.timing import HOUR_SETTLE_MARGIN
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, AttemptHour, DeletedWebhook

log = logging.getLogger(__name__)

BOUNDS_MS: tuple[float, ...] = (
    10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500,
    10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 240_000, 300_000,
)  # fmt: skip
"""Upper bounds (inclusive) of the duration buckets, in ms: each at most twice the one before,
from 10 ms to the default delivery timeout; one more bucket counts what lasted longer. Fixed
forever: stored counts are only comparable under the same bounds."""
BUCKETS = len(BOUNDS_MS) + 1
HOUR = timedelta(hours=1)
WINDOW_HOURS = 168
"""The chart's longest window (7 days): the hourly job sums no further back."""
EVERY_WEBHOOK = "*"
"""The webhook id of the marker rows: no webhook has it (ids are ``WH-…``)."""
SUM_LEASE = "sum-hours"


@dataclass
class HourSum:
    """One webhook's attempts in one hour: outcomes and duration bucket counts."""

    hour: datetime
    successes: int = 0
    failures: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    @property
    def total(self) -> int:
        return self.successes + self.failures

    def add(self, other: HourSum) -> None:
        self.successes += other.successes
        self.failures += other.failures
        self.buckets = [mine + theirs for mine, theirs in zip(self.buckets, other.buckets, strict=True)]


def bucket_of(duration_ms: float) -> int:
    """The bucket of a duration: the first whose bound is not below it (the SQL's ``CASE``)."""
    return bisect.bisect_left(BOUNDS_MS, duration_ms)


def percentile(buckets: list[int], fraction: float) -> float | None:
    """The ``fraction`` (0.5: median, 0.95: p95) percentile of the durations counted in
    ``buckets``, in ms; None when there are none.

    The rank ``fraction × n`` falls in one bucket; the value is interpolated linearly between
    that bucket's lower and upper bound by the rank's place among its counts (the overflow
    bucket answers its lower bound, the last bound). The true percentile (nearest rank: the
    ⌈fraction × n⌉-th smallest duration) lies in the same bucket, and every bucket's upper bound
    is at most twice its lower, so the answer is within a factor of 2 of the truth (within 10 ms
    below 10 ms).
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank, before = fraction * total, 0
    for index, count in enumerate(buckets):
        if count and before + count >= rank:
            low = BOUNDS_MS[index - 1] if index else 0.0
            if index == len(BOUNDS_MS):
                return float(low)
            return low + (BOUNDS_MS[index] - low) * (rank - before) / count
        before += count
    return float(BOUNDS_MS[-1])  # pragma: no cover - the rank is within the total


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def settle_time() -> timedelta:
    """How long after an hour ends its attempts are all recorded: the longest attempt (the
    delivery or validation timeout) and :data:`~.timing.HOUR_SETTLE_MARGIN`."""
    config = current_app.config
    longest = max(float(config["WEBHOOK_DELIVERY_TIMEOUT"]), float(config["WEBHOOK_VALIDATION_TIMEOUT"]))
    return timedelta(seconds=longest + HOUR_SETTLE_MARGIN)


def first_unsettled_hour(now: datetime) -> datetime:
    """The start of the oldest hour that is not settled at ``now``; the hours before it are."""
    return floor_hour(now - settle_time())


# -- summing ---------------------------------------------------------------------------------


@functools.cache
def _bucket_column() -> ColumnElement[int]:
    """The bucket of ``duration_ms`` in SQL (built once: its 25 branches are not free to build)."""
    return case(*((Attempt.duration_ms <= bound, index) for index, bound in enumerate(BOUNDS_MS)), else_=len(BOUNDS_MS))


def _hour_number() -> ColumnElement[int]:
    """Hours since the epoch of ``started_at`` (naive UTC in both databases)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", Attempt.started_at) / 3600), BigInteger)
    # Floor division: SQLAlchemy renders "/" as true division, which would group by the second.
    return cast(func.strftime("%s", Attempt.started_at), Integer) // 3600


def sum_range(start: datetime, end: datetime, webhook_id: str | None = None) -> dict[tuple[str, datetime], HourSum]:
    """The attempts of ``[start, end)`` summed per webhook and hour, in one ``GROUP BY``: of one
    webhook, or of every webhook not being purged. Hours without attempts are absent."""
    hour, bucket = _hour_number().label("hour"), _bucket_column().label("bucket")
    query = (
        select(
            Attempt.webhook_id, hour, bucket, func.count(),
            func.sum(case((Attempt.success, 1), else_=0)),
        )
        .where(Attempt.started_at >= start, Attempt.started_at < end)
        .group_by(Attempt.webhook_id, hour, bucket)
    )  # fmt: skip
    if webhook_id is not None:
        query = query.where(Attempt.webhook_id == webhook_id)
    else:
        query = query.where(Attempt.webhook_id.not_in(select(DeletedWebhook.webhook_id)))
    sums: dict[tuple[str, datetime], HourSum] = {}
    for owner, number, index, count, successes in db.session.execute(query):
        moment = datetime.fromtimestamp(int(number) * 3600, UTC)
        summed = sums.setdefault((owner, moment), HourSum(moment))
        summed.successes += int(successes)
        summed.failures += int(count) - int(successes)
        summed.buckets[int(index)] += int(count)
    return sums


def store(rows: Iterable[tuple[str, HourSum]]) -> None:
    """Upsert ``(webhook id, hour sum)`` rows into ``attempt_hours`` (no commit)."""
    values = [
        {"webhook_id": owner, "hour": summed.hour, "successes": summed.successes, "failures": summed.failures,
         "duration_buckets": _trimmed(summed.buckets)}
        for owner, summed in rows
    ]  # fmt: skip
    if not values:
        return
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(AttemptHour)
    upsert = upsert.on_conflict_do_update(
        index_elements=[AttemptHour.webhook_id, AttemptHour.hour],
        set_={name: upsert.excluded[name] for name in ("successes", "failures", "duration_buckets")},
    )
    db.session.execute(upsert, values)


def _trimmed(buckets: list[int]) -> list[int]:
    """The counts without their trailing zeros: most hours hold a few attempts of similar speed,
    and a row of ``[0, 0, 0, 2]`` is a quarter the size of all 26 counts."""
    used = len(buckets)
    while used and not buckets[used - 1]:
        used -= 1
    return buckets[:used]


def padded(stored: list[int] | None) -> list[int]:
    """A stored row's bucket counts, all :data:`BUCKETS` of them."""
    counts = list(stored or [])
    return counts + [0] * (BUCKETS - len(counts))


def sum_hour(hour: datetime) -> int:
    """Sum every webhook's attempts of ``hour`` and mark it summed, in one transaction; returns
    the webhooks that had attempts."""
    sums = sum_range(hour, hour + HOUR)
    store([*((owner, summed) for (owner, _), summed in sums.items()), (EVERY_WEBHOOK, HourSum(hour))])
    db.session.commit()
    return len(sums)


def sum_settled(now: datetime | None = None) -> int | None:
    """The hourly job: sum the settled hours not summed yet (since the last marker, within the
    last :data:`WINDOW_HOURS`), oldest first, an hour per transaction; returns the hours summed,
    or None when another worker holds the lease."""
    now = now or utcnow()
    holder = maintenance.take_lease(SUM_LEASE)
    if holder is None:
        return None
    try:
        last = db.session.scalar(select(func.max(AttemptHour.hour)).where(AttemptHour.webhook_id == EVERY_WEBHOOK))
        hour = floor_hour(now) - WINDOW_HOURS * HOUR
        if last is not None:
            hour = max(hour, last + HOUR)
        end, summed = first_unsettled_hour(now), 0
        while hour < end:
            sum_hour(hour)
            summed += 1
            hour += HOUR
            if not maintenance.renew_lease(SUM_LEASE, holder):
                log.warning("The hour-summing lease expired mid-way; another worker carries on.")
                break
    finally:
        db.session.rollback()  # a connection that died mid-way leaves its transaction to end first
        maintenance.release_lease(SUM_LEASE, holder)
    return summed


# -- reading ---------------------------------------------------------------------------------


def hours_of(webhook_id: str, first: datetime, last: datetime, now: datetime | None = None) -> list[HourSum]:
    """The webhook's hours from ``first`` to ``last`` (hour starts, inclusive), one per hour:
    settled hours from ``attempt_hours`` (summed now if nobody has, and stored), the others
    read live from the attempts."""
    now = now or utcnow()
    unsettled = first_unsettled_hour(now)
    settled_end = min(unsettled, last + HOUR)
    found: dict[datetime, HourSum] = {}
    marked: set[datetime] = set()
    if first < settled_end:
        in_window = (AttemptHour.hour >= first, AttemptHour.hour < settled_end)
        marked = set(
            db.session.scalars(select(AttemptHour.hour).where(AttemptHour.webhook_id == EVERY_WEBHOOK, *in_window))
        )
        rows = db.session.execute(
            select(AttemptHour.hour, AttemptHour.successes, AttemptHour.failures, AttemptHour.duration_buckets).where(
                AttemptHour.webhook_id == webhook_id, *in_window
            )
        )
        for hour, successes, failures, buckets in rows:
            found[hour] = HourSum(hour, successes, failures, padded(buckets))
        missing = [hour for hour in _hours(first, settled_end) if hour not in found and hour not in marked]
        if missing:
            sums = sum_range(missing[0], missing[-1] + HOUR, webhook_id)
            filled = [(webhook_id, sums.get((webhook_id, hour), HourSum(hour))) for hour in missing]
            store(filled)
            db.session.commit()
            found.update((summed.hour, summed) for _, summed in filled)
    if unsettled <= last:
        live = sum_range(max(unsettled, first), last + HOUR, webhook_id)
        found.update((hour, summed) for (_, hour), summed in live.items())
    return [found.get(hour) or HourSum(hour) for hour in _hours(first, last + HOUR)]


def _hours(start: datetime, end: datetime) -> list[datetime]:
    count = int((end - start) / HOUR)
    return [start + n * HOUR for n in range(max(count, 0))]
