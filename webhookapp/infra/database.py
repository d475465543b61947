"""The database connection's rules (docs/architecture.md, "Reliability"), applied by the factory."""

from __future__ import annotations

import os
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, event

from webhookapp.infra.extensions import ping_idle_connections


def prepare(engine: Engine) -> None:
    """SQLite: a private file and the pragmas below; any database: idle connections pinged."""
    if engine.dialect.name == "sqlite":
        private_file(engine.url.database)
        event.listen(engine, "connect", sqlite_pragmas)
    ping_idle_connections(engine)


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
