"""The database connection's rules (docs/architecture.md, "Reliability"), applied by the factory."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from typing import Any, cast

import psycopg
from flask import Flask
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

from webhookapp.infra.extensions import GENERIC_PLANS, db, ping_idle_connections


def prepare(engine: Engine) -> None:
    """SQLite: a private file and the pragmas below; any database: idle connections pinged."""
    if engine.dialect.name == "sqlite":
        private_file(engine.url.database)
        event.listen(engine, "connect", sqlite_pragmas)
    ping_idle_connections(engine)


KEYED_SETTINGS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}
"""The session settings of the :data:`GENERIC_PLANS` connections: each prepared statement is
planned once, and that plan reaches rows through an index wherever there is one."""


def add_generic_plans_engine(app: Flask) -> None:
    """On PostgreSQL, an engine of its own for the two statements between an event and its send,
    the event API's and the claim (:data:`GENERIC_PLANS`), to the same database with the same
    options, whose connections plan each prepared statement once (:data:`KEYED_SETTINGS`).

    PostgreSQL plans a prepared statement on each of its first five runs, then keeps a generic
    plan only if its estimate beats theirs. For the claim it never did, and for an idle event's
    statement it did not either: each was planned on every call (0.3 and 0.7–1 ms). A generic
    plan knows no parameter's value, so it guesses a product's webhooks as the table's average;
    where products are few and unequal that is most of a small table, and it read the table
    whole for a product of one webhook. Both statements reach every row by a key, so these
    connections also set ``enable_seqscan = off``: where an index serves, the plan uses it,
    whatever the estimate (``tests/unit/test_claim_plan.py``, ``tests/unit/test_ingest_plan.py``;
    docs/performance.md, "Planned once")."""
    if db.engine.dialect.name != "postgresql":
        return
    engine = create_engine(db.engine.url, **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    prepare(engine)

    @event.listens_for(engine, "connect")
    def keyed_settings(dbapi_connection: Any, _record: Any) -> None:
        for name, value in KEYED_SETTINGS.items():
            dbapi_connection.execute(f"SET {name} = {value}")
        dbapi_connection.commit()

    app.extensions[GENERIC_PLANS] = engine


@contextlib.contextmanager
def raw_autocommit(engine: Engine, cursor_key: str) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor of a pooled raw psycopg connection in autocommit, for the hot paths that run one
    statement without SQLAlchemy around it (the event API's, the claim): each statement is its own
    transaction, so one round trip and no BEGIN or COMMIT.

    The cursor is kept with the connection in the pool under ``cursor_key``: a new psycopg cursor
    costs about as much client CPU as running such a statement, and a kept one keeps its result
    loaders. A connection that broke meanwhile is invalidated (the pool drops it, its ``info``
    and cursor with it); any other goes back to the pool as it came, out of autocommit."""
    pooled = engine.raw_connection()
    # Declared Optional: None only once the pool has invalidated it, never just after checkout.
    connection = cast("psycopg.Connection[Any]", pooled.driver_connection)
    cursor: psycopg.Cursor[Any] | None = pooled.info.get(cursor_key)
    if cursor is None:
        cursor = pooled.info[cursor_key] = connection.cursor()
    try:
        connection.autocommit = True
        yield cursor
    except BaseException:
        if connection.broken or connection.closed:
            pooled.invalidate()  # not back into the pool
        raise
    finally:
        if not (connection.broken or connection.closed):
            connection.autocommit = False  # idle in autocommit: no transaction is left open
        pooled.close()


READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction: a standby, or a primary being failed over
# SQLite's OperationalError also means a broken schema; only these say "busy or gone for now".
SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, DisconnectionError, psycopg.Error)
"""The classes :func:`unavailable` looks into: the factory's error handler catches these."""


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says no database takes writes just now (docs/architecture.md,
    "Reliability"): it could not be reached, it dropped the connection, or it is read-only (a
    standby before its promotion). The caller may try again in a few seconds; any other error
    is a fault of the statement or the code."""
    if isinstance(exc, DisconnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).lower().startswith(SQLITE_UNAVAILABLE)
    if isinstance(exc, psycopg.OperationalError):  # refused, reset, shut down by the administrator
        return True
    return getattr(exc, "sqlstate", None) == READ_ONLY_SQLSTATE


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. ``Session.execute`` is declared to return a
    ``Result``; for these statements it is a ``CursorResult``, which counts them."""
    return cast(CursorResult[Any], result).rowcount


def private_file(path: str | None) -> None:
    """The SQLite file holds JWT secrets: readable by its owner alone (0600), like
    ``instance/secret_key``. SQLite gives its -wal and -shm files the same mode."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


def sqlite_pragmas(connection: Any, _record: Any) -> None:
    """SQLite as a shared database: WAL so that readers never block the worker's writes, a busy
    timeout instead of instant "database is locked", foreign keys and LIKE as in PostgreSQL."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA case_sensitive_like=ON")  # LIKE as PostgreSQL has it; ilike lowers both sides
    cursor.close()
