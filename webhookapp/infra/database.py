"""The database connection's rules (docs/architecture.md, "Reliability"), applied by the factory."""

from __future__ import annotations

import os
import sqlite3
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


def add_generic_plans_engine(app: Flask) -> None:
    """On PostgreSQL, an engine of its own for the claim (:data:`GENERIC_PLANS`), to the same
    database with the same options, whose connections plan each prepared statement once.

    PostgreSQL plans a prepared statement on each of its first five runs, then keeps a generic
    plan only if its estimate beats theirs; for the claim it never did, and planned it on every
    call (0.3 ms, twice per idle event). The claim's generic plan reads what the custom one reads
    (``tests/unit/test_claim_plan.py``). The event API's statement stays on the app's own
    connections: its generic plan guesses a product's webhooks as the table's average, and where
    the products are few and unequal it read the whole table for a product of one webhook
    (docs/performance.md, "Planned once")."""
    if db.engine.dialect.name != "postgresql":
        return
    engine = create_engine(db.engine.url, **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    prepare(engine)

    @event.listens_for(engine, "connect")
    def generic_plans(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("SET plan_cache_mode = force_generic_plan")
        dbapi_connection.commit()

    app.extensions[GENERIC_PLANS] = engine


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
