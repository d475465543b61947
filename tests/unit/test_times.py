"""Times in code are aware UTC; the columns hold naive UTC (docs/architecture.md, "Layers")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from webhookapp.core.times import aware_utc, naive_utc

PARIS_SUMMER = timezone(timedelta(hours=2))


def test_naive_utc_is_the_same_moment_without_its_zone():
    assert naive_utc(datetime(2026, 7, 1, 14, 30, tzinfo=PARIS_SUMMER)) == datetime(2026, 7, 1, 12, 30)


def test_aware_utc_takes_a_naive_time_as_utc_and_keeps_a_zone_given():
    assert aware_utc(datetime(2026, 7, 1, 12, 30)) == datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    given = datetime(2026, 7, 1, 14, 30, tzinfo=PARIS_SUMMER)
    assert aware_utc(given) is given


def test_the_two_round_trip():
    moment = datetime(2026, 12, 6, 4, 5, 6, 789, tzinfo=UTC)
    assert aware_utc(naive_utc(moment)) == moment
