"""Recording successes on PostgreSQL (docs/architecture.md, "PostgreSQL fast paths"): a batch of
attempts in one statement.

Sent row by row, a batch costs the worker more Python than its sends do; here the rows travel
as arrays, and one statement locks the webhooks (in id order, as every multi-row writer does),
inserts the attempts, counts the successes and releases the leases that are still ours
(:data:`webhookapp.engine.triggers.postgresql.SUCCEED`). A webhook deleted meanwhile is skipped: its attempt has
nowhere to go. The arrays are the columns of the ``attempts`` table, named and typed after it,
plus what the success transition needs (:data:`EXTRA_COLUMNS`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.dialects import postgresql

from webhookapp.core.times import naive_utc
from webhookapp.engine.triggers.postgresql import SUCCEED
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, UTCDateTime

ATTEMPT_COLUMNS = tuple(column.name for column in Attempt.__table__.c if not column.primary_key)
EXTRA_COLUMNS = {"lease_id": "text", "info_duration": "float8", "excerpt": "text"}
"""What the success transition needs beyond the attempt row: the claim's lease and the summary's
rounded duration and excerpt."""


def _array_type(name: str) -> str:
    """The array element type of an ``attempts`` column, without a length (a cast to ``VARCHAR(n)``
    would cut a longer value silently, where the insert refuses it); JSON travels as text and is
    cast after."""
    column = Attempt.__table__.c[name]
    if isinstance(column.type, JSON):
        return "text"
    return re.sub(r"\(\d+\)", "", column.type.compile(dialect=postgresql.dialect()))


@functools.cache
def statement() -> tuple[str, tuple[str, ...]]:
    """The statement and its array columns, built once from the ``attempts`` table."""
    types = {name: _array_type(name) for name in ATTEMPT_COLUMNS} | EXTRA_COLUMNS
    columns = tuple(types)
    arrays = ", ".join(f"%({name})b::{kind}[]" for name, kind in types.items())
    values = ", ".join(
        f"CAST(b.{name} AS json)" if isinstance(Attempt.__table__.c[name].type, JSON) else f"b.{name}"
        for name in ATTEMPT_COLUMNS
    )
    text = f"""
    WITH batch AS (
        SELECT * FROM unnest({arrays}) AS b({", ".join(columns)})
    ),
    locked AS MATERIALIZED (
        SELECT id FROM webhooks WHERE id IN (SELECT webhook_id FROM batch) ORDER BY id FOR UPDATE
    ),
    inserted AS (
        INSERT INTO attempts ({", ".join(ATTEMPT_COLUMNS)})
        SELECT {values}
        FROM batch b JOIN locked ON locked.id = b.webhook_id
        RETURNING id, webhook_id
    ),
{SUCCEED}
    SELECT webhook_id, id FROM inserted WHERE webhook_id IN (SELECT id FROM counted)
"""
    return text, columns


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


@functools.cache
def _converters() -> dict[str, Callable[[Any], Any]]:
    """How an array carries a column's values, where it differs from the row's: times as naive UTC,
    JSON as text."""
    converters: dict[str, Callable[[Any], Any]] = {}
    for name in ATTEMPT_COLUMNS:
        column_type = Attempt.__table__.c[name].type
        if isinstance(column_type, JSON):
            converters[name] = _json_text
        elif isinstance(column_type, UTCDateTime):
            converters[name] = naive_utc  # as the columns hold it
    return converters


def complete_successes(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Record successful attempts of distinct webhooks and commit; returns the recorded attempts'
    ids by webhook.

    Each row holds the attempt's columns and :data:`EXTRA_COLUMNS`, by name."""
    text, columns = statement()
    converters = _converters()
    arrays: dict[str, list[Any]] = {}
    for name in columns:
        values = [row[name] for row in rows]
        convert = converters.get(name)
        arrays[name] = [convert(value) for value in values] if convert else values
    # The session's own connection and transaction, through SQLAlchemy so that a dropped
    # connection is seen as one; parameters in binary (psycopg's %(name)b), which arrays of JSON
    # and bodies need: in text they are escaped character by character.
    recorded = {row[0]: row[1] for row in db.session.connection().exec_driver_sql(text, arrays)}
    db.session.commit()
    return recorded
