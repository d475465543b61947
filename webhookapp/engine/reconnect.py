"""Surviving a database that drops its connections (docs/architecture.md, "Reliability").

A restart, a failover or ``pg_terminate_backend`` kills every pooled connection at once. A
statement that fails because its connection died never committed (or, in autocommit, did the
whole of its work or none of it), so it is run again on a fresh connection; SQLAlchemy
invalidates the whole pool when it sees one dead connection, so the next try gets a new one.
:func:`retrying` is the one loop that does so, for the session and for raw driver connections alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, SQLAlchemyError

from webhookapp.engine.timing import RECONNECT_PAUSE, RECONNECT_TRIES
from webhookapp.infra.extensions import db

log = logging.getLogger(__name__)
T = TypeVar("T")


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or dropped the connection, rather
    than refusing the statement itself: SQLAlchemy's word for it, or the driver's own where a
    statement runs on a raw connection (the claim, the event API's statement)."""
    if isinstance(exc, OperationalError | DisconnectionError | psycopg.OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retrying(
    work: Callable[[], T],
    *,
    tries: int = RECONNECT_TRIES,
    dropped: Callable[[BaseException], bool] = unreachable,
    recover: Callable[[], None] | None = None,
) -> T:
    """``work()``; when the database was unreachable (``dropped`` says so of the error), let the
    dead connection go (``recover``; by default, roll the session back) and try again, up to
    ``tries`` times in all, pausing a little longer each time. Other errors pass through.

    Code that runs SQL on a raw driver connection passes its driver's error test and a
    ``recover`` of its own (the event API's PostgreSQL statement: see
    :mod:`webhookapp.engine.ingest.postgresql`)."""
    for attempt in range(1, tries + 1):
        try:
            return work()
        except Exception as exc:
            if not dropped(exc) or attempt == tries:
                raise
            log.warning("The database connection failed (%s); trying again on a fresh one.", type(exc).__name__)
            (recover or _discard_session)()
            time.sleep(RECONNECT_PAUSE * attempt)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def or_else(work: Callable[[], T], fallback: T) -> T:
    """``work()`` through :func:`retrying`; ``fallback`` if the database stays unreachable, so
    that a loop or a periodic job goes on (and keeps what it holds) until it answers again."""
    try:
        return retrying(work)
    except (SQLAlchemyError, psycopg.OperationalError) as exc:
        if not unreachable(exc):
            raise
        log.warning("The database is unreachable; carrying on without it for now.")
        time.sleep(RECONNECT_PAUSE)
        return fallback


def _discard_session() -> None:
    """Drop the session's transaction and connection, whatever state the dead connection left."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        close_session()


def close_session() -> None:
    """End the session (as an app context's teardown does); a connection that died meanwhile is
    let go, not an error that would fail the job."""
    try:
        db.session.remove()
    except SQLAlchemyError as exc:
        if not unreachable(exc):
            raise
        db.session.registry.clear()
