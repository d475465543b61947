"""The details page's chart: a webhook's deliveries per hour (successes, failures) and response
times (median, 95th percentile) over the last 24 hours or 7 days, read from the hourly sums
(:mod:`webhookapp.engine.maintenance.hourly`; docs/architecture.md, "Scale")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from webhookapp.core.times import utcnow
from webhookapp.engine.maintenance import hourly
from webhookapp.models import Webhook

SPANS = {"24h": ("Last 24 hours", 24), "7d": ("Last 7 days", 7 * 24)}
DEFAULT_SPAN = "24h"


def span_of(asked: str | None) -> str:
    """The span ``?span=`` names, or the default for a missing or unknown one."""
    return asked if asked in SPANS else DEFAULT_SPAN


@dataclass(frozen=True)
class ChartHour:
    """One hour of the chart (``hour`` is its start, UTC); durations in ms, None without attempts."""

    hour: datetime
    successes: int
    failures: int
    p50: float | None
    p95: float | None

    @property
    def total(self) -> int:
        return self.successes + self.failures


@dataclass(frozen=True)
class Chart:
    """The hours of a span, oldest first (the last one is the hour now running), and its totals."""

    span: str
    label: str
    hours: list[ChartHour]
    successes: int
    failures: int
    p50: float | None
    p95: float | None

    @property
    def total(self) -> int:
        return self.successes + self.failures

    @property
    def empty(self) -> bool:
        return self.total == 0


def chart(webhook: Webhook, span: str, now: datetime | None = None) -> Chart:
    """The webhook's chart over ``span`` (a key of :data:`SPANS`): at most 168 stored hours and
    the live ones, whatever the number of attempts."""
    label, count = SPANS[span_of(span)]
    last = hourly.floor_hour(now or utcnow())
    sums = hourly.hours_of(webhook.id, last - (count - 1) * hourly.HOUR, last, now)
    overall = hourly.HourSum(last)
    hours = []
    for summed in sums:
        overall.add(summed)
        hours.append(
            ChartHour(
                summed.hour, summed.successes, summed.failures,
                hourly.percentile(summed.buckets, 0.5), hourly.percentile(summed.buckets, 0.95),
            )
        )  # fmt: skip
    return Chart(
        span_of(span), label, hours, overall.successes, overall.failures,
        hourly.percentile(overall.buckets, 0.5), hourly.percentile(overall.buckets, 0.95),
    )  # fmt: skip
