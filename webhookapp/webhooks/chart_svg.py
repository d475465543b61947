"""The Statistics tab's chart, laid out on the server: numbers in, the positions and labels the
SVG template (``templates/webhooks/_chart.html``) draws. No script draws it in the browser, and
no text a user typed goes into it (its labels are times, counts and durations, and the template
escapes them anyway). Colours come from the stylesheet's classes, so the page's theme applies.

Two panels share the time axis: stacked bars per hour (successes below, failures on top) on a
count axis, and the median and 95th-percentile response times as lines on a duration axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from webhookapp.services.webhook_stats import Chart, ChartHour

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT = 56, 10
BARS_TOP, BARS_HEIGHT = 22, 140
LINES_TOP, LINES_HEIGHT = 196, 76
TIME_LABELS_Y = 292


@dataclass(frozen=True)
class Bar:
    """One hour's column: the success and failure rectangles (height 0: not drawn) and its tooltip."""

    x: float
    width: float
    ok_y: float
    ok_height: float
    bad_y: float
    bad_height: float
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Row:
    """A row of the table behind the chart."""

    hour: str
    successes: int
    failures: int
    p50: str
    p95: str


@dataclass(frozen=True)
class ChartView:
    width: int
    height: int
    left: float
    right: float
    bars_top: float
    bars_bottom: float
    lines_top: float
    lines_bottom: float
    time_labels_y: float
    bars: list[Bar]
    count_ticks: list[Tick]
    duration_ticks: list[Tick]
    time_ticks: list[Tick]
    p50_path: str
    p95_path: str
    summary: str
    rows: list[Row]
    total_p50: str
    total_p95: str


def format_ms(value: float | None) -> str:
    """``45 ms``, ``1.2 s``, ``95 s``; an em dash for no value."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s" if value < 10_000 else f"{value / 1000:.0f} s"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10ⁿ not below ``value`` (1 for nothing): an axis's top."""
    if value <= 0:
        return 1
    power: float = 10 ** math.floor(math.log10(value))  # an int from 1 up, a float below
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _hour_text(hour: ChartHour) -> str:
    return hour.hour.strftime("%Y-%m-%d %H:00 UTC")


def _title(hour: ChartHour) -> str:
    text = f"{_hour_text(hour)}: {hour.successes:,} succeeded, {hour.failures:,} failed"
    if hour.total:
        text += f"; median {format_ms(hour.p50)}, 95th percentile {format_ms(hour.p95)}"
    return text


def summary(chart: Chart) -> str:
    """What the chart shows, in a sentence: the SVG's description."""
    text = (
        f"{chart.label}: {_plural(chart.total, 'delivery attempt')}, {chart.successes:,} succeeded and "
        f"{chart.failures:,} failed"
    )
    if chart.total:
        text += f"; median response time {format_ms(chart.p50)}, 95th percentile {format_ms(chart.p95)}"
    return text + "."


def _path(points: list[tuple[float, float] | None], half: float) -> str:
    """SVG path data through the points, broken where a point is None; a lone point is a short
    level stroke as wide as its bar, so that it shows."""
    parts, run = [], []
    for point in [*points, None]:
        if point is not None:
            run.append(point)
            continue
        if len(run) == 1:
            x, y = run[0]
            parts.append(f"M{x - half:.1f} {y:.1f}H{x + half:.1f}")
        elif run:
            parts.append("M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in run))
        run = []
    return "".join(parts)


def _time_ticks(chart: Chart, slot: float) -> list[Tick]:
    ticks = []
    for index, hour in enumerate(chart.hours):
        moment = hour.hour
        if chart.span == "7d" and moment.hour == 0:
            ticks.append(Tick(LEFT + index * slot, moment.strftime("%a %d")))
        elif chart.span != "7d" and moment.hour % 3 == 0:
            ticks.append(Tick(LEFT + index * slot, moment.strftime("%H:00")))
    return ticks


def layout(chart: Chart) -> ChartView:
    """Where everything goes in a ``WIDTH`` × ``HEIGHT`` view box."""
    slot = (WIDTH - LEFT - RIGHT) / max(len(chart.hours), 1)
    width = max(slot * 0.8, 1.0)
    bars_bottom, lines_bottom = BARS_TOP + BARS_HEIGHT, LINES_TOP + LINES_HEIGHT
    top_count = nice_ceiling(max((hour.total for hour in chart.hours), default=0))
    top_ms = nice_ceiling(max((hour.p95 or 0 for hour in chart.hours), default=0))
    bars: list[Bar] = []
    p50: list[tuple[float, float] | None] = []
    p95: list[tuple[float, float] | None] = []
    for index, hour in enumerate(chart.hours):
        x = LEFT + index * slot + (slot - width) / 2
        ok_height = BARS_HEIGHT * hour.successes / top_count
        bad_height = BARS_HEIGHT * hour.failures / top_count
        ok_y = bars_bottom - ok_height
        bars.append(Bar(x, width, ok_y, ok_height, ok_y - bad_height, bad_height, _title(hour)))
        centre = x + width / 2
        for line, value in ((p50, hour.p50), (p95, hour.p95)):
            line.append(None if value is None else (centre, lines_bottom - LINES_HEIGHT * min(value / top_ms, 1)))
    count_ticks = [Tick(bars_bottom - BARS_HEIGHT * share, f"{top_count * share:,.0f}") for share in (0, 0.5, 1)]
    if top_count % 2:  # no half ticks between whole counts
        del count_ticks[1]
    return ChartView(
        width=WIDTH, height=HEIGHT, left=LEFT, right=WIDTH - RIGHT, bars_top=BARS_TOP, bars_bottom=bars_bottom,
        lines_top=LINES_TOP, lines_bottom=lines_bottom, time_labels_y=TIME_LABELS_Y, bars=bars,
        count_ticks=count_ticks,
        duration_ticks=[Tick(lines_bottom - LINES_HEIGHT * share, format_ms(top_ms * share)) for share in (0, 0.5, 1)],
        time_ticks=_time_ticks(chart, slot), p50_path=_path(p50, width / 2), p95_path=_path(p95, width / 2),
        summary=summary(chart),
        rows=[Row(_hour_text(h), h.successes, h.failures, format_ms(h.p50), format_ms(h.p95)) for h in chart.hours],
        total_p50=format_ms(chart.p50), total_p95=format_ms(chart.p95),
    )  # fmt: skip
