"""Pages of long lists that cost the same at any depth (docs/architecture.md, "Scale").

Three tools, for lists that grow without bound (a webhook's attempts, an account's webhooks):

* :func:`keyset_page`: the delivery pages. "Older" and "Newer" carry the last row's sort key,
  so a page deep in the history is an index range read, not a count of the rows before it.
* :func:`deferred_rows`: an ``offset`` page (the API keeps ``limit``/``offset`` as Connect has
  them). The keys are found first by a narrow query, which an index answers alone; only the
  rows of the page are then read.
* :func:`bounded_count` and :func:`api_total`: exact counts while they are cheap; past
  :data:`COUNT_BOUND` rows a page says "10,000+", and the API's ``Content-Range`` carries the
  planner's estimate, never less than what the page proves (Connect's client reads an integer,
  and stops at the first short page).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import ClauseElement, ColumnElement, Executable, Select, func, literal, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute

from webhookapp.infra.extensions import db, on_postgresql

COUNT_BOUND = 10_000
"""Rows counted exactly before a count is shown as "10,000+": about a millisecond of index."""


@dataclass(frozen=True)
class Count:
    """A row count, exact or a lower bound ("10,000+")."""

    value: int
    exact: bool = True

    def __str__(self) -> str:
        return f"{self.value:,}" if self.exact else f"{self.value:,}+"

    def __bool__(self) -> bool:
        return self.value > 0


def _keys(query: Select[Any], key: InstrumentedAttribute[Any]) -> Select[Any]:
    """``query`` selecting only ``key``: what an index can answer without the table."""
    return query.with_only_columns(key, maintain_column_froms=True)


def bounded_count(query: Select[Any], key: InstrumentedAttribute[Any], bound: int | None = None) -> Count:
    """How many rows ``query`` has, counting no further than ``bound`` (:data:`COUNT_BOUND`)."""
    bound = COUNT_BOUND if bound is None else bound
    limited = _keys(query, key).order_by(None).limit(bound + 1).subquery()
    counted = db.session.scalar(select(func.count()).select_from(limited)) or 0
    return Count(bound, exact=False) if counted > bound else Count(counted)


def deferred_rows(
    query: Select[Any],
    key: Any,
    offset: int,
    limit: int,
    options: Sequence[Any] = (),
    row_key: InstrumentedAttribute[Any] | None = None,
) -> list[Any]:
    """The rows of ``query`` (ordered) at ``offset``: keys first, then those ``limit`` rows (read
    by ``row_key``, when ``key`` is another query's column holding the same values)."""
    keys = list(db.session.scalars(_keys(query, key).offset(offset).limit(limit)))
    return rows_by_keys(key if row_key is None else row_key, keys, options)


def rows_by_keys(row_key: InstrumentedAttribute[Any], keys: Sequence[Any], options: Sequence[Any] = ()) -> list[Any]:
    """The rows whose ``row_key`` is one of ``keys``, in the order of ``keys``, in one statement
    (a row gone meanwhile is left out)."""
    if not keys:
        return []
    rows = db.session.scalars(select(row_key.class_).where(row_key.in_(keys)).options(*options)).unique().all()
    position = {value: index for index, value in enumerate(keys)}
    return sorted(rows, key=lambda row: position[getattr(row, row_key.key)])


class OffsetPagination(Pagination):
    """Flask-SQLAlchemy's numbered pages, read with :func:`deferred_rows`: arguments ``select``
    (ordered), ``key`` and ``options`` (loader options for the page's rows), and ``counted_with_keys``.

    ``counted_with_keys``: the page's keys and the total come from one statement (a window
    count), for a list whose order no index gives, such as a text search: its keys must be read
    and sorted whole for any page anyway, so a count apart would read them all a second time."""

    _counted: int | None = None

    def _query_items(self) -> list[Any]:
        args = self._query_args
        if not args.get("counted_with_keys"):
            return deferred_rows(args["select"], args["key"], self._query_offset, self.per_page, args["options"])
        keys = _keys(args["select"], args["key"]).add_columns(func.count().over())
        found = db.session.execute(keys.offset(self._query_offset).limit(self.per_page)).all()
        if not found:
            return []  # past the end: no row carries the total, counted apart
        self._counted = found[0][1]
        return rows_by_keys(args["key"], [row[0] for row in found], args["options"])

    def _query_count(self) -> int:
        if self._counted is not None:
            return self._counted
        keys = _keys(self._query_args["select"], self._query_args["key"]).order_by(None).subquery()
        return db.session.scalar(select(func.count()).select_from(keys)) or 0


class _Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement, its parameters bound as the statement's own."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]):
        self.statement = statement


@compiles(_Explain, "postgresql")
def _explain_postgresql(element: _Explain, compiler: Any, **kw: Any) -> str:
    sql: str = compiler.process(element.statement, **kw)
    return "EXPLAIN (FORMAT JSON) " + sql


def estimated_count(query: Select[Any], key: InstrumentedAttribute[Any]) -> int | None:
    """PostgreSQL's estimate of the rows of ``query`` (None elsewhere)."""
    if not on_postgresql():
        return None
    plan = db.session.execute(_Explain(_keys(query, key).order_by(None))).scalar_one()  # one row: the plan
    return int(plan[0]["Plan"]["Plan Rows"])


def api_total(
    query: Select[Any], key: InstrumentedAttribute[Any], offset: int, returned: int, limit: int
) -> tuple[int, bool]:
    """The total of an offset page for ``Content-Range``, and whether it is exact.

    A short page ends the list, so its total is known for free. Otherwise: an exact count up to
    :data:`COUNT_BOUND`; beyond it, the planner's estimate (an exact count on SQLite), never less
    than the rows this page proves exist, plus one when the page is full, so that a client that
    pages until ``last >= total - 1`` asks for the next page and stops at the first short one.
    """
    if returned and returned < limit:
        return offset + returned, True
    proven = offset + returned + (1 if returned and returned == limit else 0)
    if offset + returned <= COUNT_BOUND:
        counted = bounded_count(query, key)
        if counted.exact:
            return counted.value, True
    estimate = estimated_count(query, key)
    if estimate is None:
        counted_all = select(func.count()).select_from(_keys(query, key).order_by(None).subquery())
        return db.session.scalar(counted_all) or 0, True
    return max(estimate, proven, COUNT_BOUND + 1), False  # more than the bound: counted above


# -- keyset pages ----------------------------------------------------------------------------

# A row's time, then its key: a number (attempts) or a Connect-style id (events, ``EV-…``).
CURSOR = re.compile(r"(\d{1,19})-(\d{1,19}|[A-Z]{2,4}(?:-\d{3}){1,8})")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def cursor(moment: datetime, key: int | str) -> str:
    """The position of a row in a newest-first list: its time (µs since the epoch) and its key."""
    return f"{(moment - EPOCH) // MICROSECOND}-{key}"


def parse_cursor(text: str | None, key_type: type = int) -> tuple[datetime, Any] | None:
    """A :func:`cursor` back, its key of ``key_type``; None for anything else (the page falls
    back to the newest)."""
    match = CURSOR.fullmatch(text or "")
    if not match or match[2].isdigit() != (key_type is int):
        return None
    try:
        return EPOCH + int(match[1]) * MICROSECOND, key_type(match[2])
    except OverflowError:
        return None


@dataclass
class KeysetPage:
    """One page of a newest-first list, with the links around it."""

    items: list[Any]
    total: Count
    newer: str | None = None  # cursor for the "Newer" link; None on the newest page
    older: str | None = None  # cursor for the "Older" link; None on the oldest page
    first: int | None = None  # the first item's position (1 = newest), when known
    per_page: int = 20

    @property
    def last(self) -> int | None:
        return None if self.first is None else self.first + len(self.items) - 1


def keyset_page(
    query: Select[Any],
    moment: InstrumentedAttribute[Any],
    key: InstrumentedAttribute[Any],
    *,
    per_page: int,
    before: str | None = None,
    after: str | None = None,
    oldest: bool = False,
    first: int | None = None,
) -> KeysetPage:
    """The page of ``query`` (newest first by ``moment``, then ``key``) that starts after the
    ``before`` cursor, ends before the ``after`` cursor, is the oldest, or else the newest.
    ``first`` is the position the link that led here knew for the page's first row."""
    total = bounded_count(query, key)
    position: ColumnElement[Any] = tuple_(moment, key)
    newest_first = (moment.desc(), key.desc())

    def at(parsed: tuple[datetime, Any]) -> ColumnElement[Any]:
        return tuple_(literal(parsed[0], moment.type), literal(parsed[1], key.type))

    def page(items: list[Any], *, newer: bool, older: bool, start: int | None) -> KeysetPage:
        def cursor_of(row: Any) -> str:
            return cursor(getattr(row, moment.key), getattr(row, key.key))

        return KeysetPage(
            items,
            total,
            newer=cursor_of(items[0]) if newer and items else None,
            older=cursor_of(items[-1]) if older and items else None,
            first=start if items else None,
            per_page=per_page,
        )

    key_type = int if key.type.python_type is int else str
    older_than, newer_than = parse_cursor(before, key_type), parse_cursor(after, key_type)
    if newer_than:
        rows = _rows(query.where(position > at(newer_than)).order_by(moment, key), per_page + 1)[::-1]
        if len(rows) > per_page:
            return page(rows[1:], newer=True, older=True, start=first)
        # Fewer than a page newer than the cursor: that is the newest page.
    elif older_than:
        rows = _rows(query.where(position < at(older_than)).order_by(*newest_first), per_page + 1)
        return page(rows[:per_page], newer=True, older=len(rows) > per_page, start=first)
    elif oldest:
        rows = _rows(query.order_by(moment, key), per_page + 1)[::-1]
        items = rows[-per_page:]
        start = total.value - len(items) + 1 if total.exact else None
        return page(items, newer=len(rows) > per_page, older=False, start=start)
    rows = _rows(query.order_by(*newest_first), per_page + 1)
    return page(rows[:per_page], newer=False, older=len(rows) > per_page, start=1)


def _rows(query: Select[Any], limit: int) -> list[Any]:
    return list(db.session.scalars(query.limit(limit)))
