"""What a ``Retry-After`` asks for (docs/handlers.md, "What your answer says about retrying"):
seconds or an HTTP date, on a 429 or 503 only, at least one second, at most the schedule's cap;
anything else leaves the schedule in charge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from webhookapp.engine import triggers
from webhookapp.engine.triggers.schedule import retry_after_seconds

NOW = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def cap(app):
    app.config.update(WEBHOOK_RETRY_BASE=300, WEBHOOK_RETRY_MAX_INTERVAL=3600)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (http_date(NOW + timedelta(seconds=90)), 90.0),
        ("Sunday, 06-Dec-26 10:01:30 GMT", 90.0),  # RFC 850, which RFC 9110 still asks recipients to read
        ("Sun Dec  6 10:01:30 2026", None),  # asctime: no zone given, so no time is known
        (http_date(NOW - timedelta(seconds=30)), -30.0),
    ],
)
def test_seconds_and_http_dates_are_read(value, seconds):
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    "value", ["", "soon", "-5", "1.5", "1e3", "0x10", "120 seconds", "Sun, 06 Dec 2026 25:99:00 GMT", "٣", None]
)
def test_garbage_is_ignored(value):
    assert retry_after_seconds(value, NOW) is None


def test_a_429_or_503_sets_the_delay_within_the_floor_and_the_cap(cap):
    assert triggers.asked_delay(503, {"Retry-After": "120"}, NOW) == 120
    assert triggers.asked_delay(429, {"retry-after": "30"}, NOW) == 30  # header names in any case
    assert triggers.asked_delay(503, {"Retry-After": "86400"}, NOW) == 3600  # the schedule's cap
    assert triggers.asked_delay(503, {"Retry-After": "9" * 40}, NOW) == 3600
    assert triggers.asked_delay(429, {"Retry-After": "0"}, NOW) == 1  # never sooner than a second
    assert triggers.asked_delay(429, {"Retry-After": http_date(NOW - timedelta(hours=1))}, NOW) == 1
    assert triggers.asked_delay(503, {"Retry-After": http_date(NOW + timedelta(minutes=5))}, NOW) == 300


def test_other_answers_and_garbage_leave_the_schedule_in_charge(cap):
    assert triggers.asked_delay(500, {"Retry-After": "120"}, NOW) is None
    assert triggers.asked_delay(301, {"Retry-After": "120"}, NOW) is None
    assert triggers.asked_delay(None, {}, NOW) is None
    assert triggers.asked_delay(503, {}, NOW) is None
    assert triggers.asked_delay(503, {"Retry-After": "tomorrow"}, NOW) is None
