"""Readiness checks: does the database answer, does Redis answer, each within a second.

Each check runs on a thread of its own and the caller waits at most :data:`CHECK_TIMEOUT` for
it, whatever the driver does: a database host that accepts the connection and then says
nothing would otherwise hold the request for minutes. A check still running from an earlier
request counts as a timeout at once, so a dead dependency never piles up threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask

from webhookapp.infra import redis_client
from webhookapp.infra.extensions import app_object, db

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 1.0  # seconds; what a load balancer's probe can wait for without flapping
# The drivers' own timeouts only end a hung check's thread; the caller's deadline decides.
DRIVER_TIMEOUT = 2 * CHECK_TIMEOUT
OK, ERROR, TIMEOUT = "ok", "error", "timeout"


def check_database(app: Flask) -> str | None:
    """``SELECT 1`` on a pooled connection; on PostgreSQL under a statement timeout."""
    with app.app_context(), db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # LOCAL: the setting ends with this transaction, and the pooled connection keeps none.
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(DRIVER_TIMEOUT * 1000)}")
        connection.exec_driver_sql("SELECT 1")
    return None


def check_redis(app: Flask) -> str | None:
    """``PING`` on a connection of its own with short socket timeouts, closed afterwards: a probe
    every few seconds costs little, and it checks that a new connection can be made. Through
    Sentinels, the ``host:port`` of the master it reached."""
    url = redis_client.configured_url(app)
    with redis_client.connect(url, connect_timeout=DRIVER_TIMEOUT, socket_timeout=DRIVER_TIMEOUT) as client:
        client.ping()
        return redis_client.master_address(client)


# Each returns what it reached when that is worth saying (the master a Sentinel named), else None.
CHECKS: dict[str, Callable[[Flask], str | None]] = {"database": check_database, "redis": check_redis}


def readiness(timeout: float = CHECK_TIMEOUT) -> dict[str, str]:
    """Each dependency's state: ``ok``, ``error`` (it refused or failed) or ``timeout``; with
    Sentinels, also ``redis_master``: the master's ``host:port`` that answered.

    The checks run concurrently, so the whole takes at most ``timeout`` seconds.
    """
    app = app_object()
    running: dict[str, threading.Lock] = app.extensions.setdefault("webhookapp.health.running", {})
    results: dict[str, str] = {}
    threads: dict[str, threading.Thread] = {}
    for name, check in CHECKS.items():
        lock = running.setdefault(name, threading.Lock())
        if not lock.acquire(blocking=False):
            results[name] = TIMEOUT  # the last one has not come back yet
            continue
        thread = threading.Thread(target=_run, args=(name, check, app, lock, results), daemon=True)
        threads[name] = thread
        thread.start()
    deadline = time.monotonic() + timeout
    for name, thread in threads.items():
        thread.join(max(deadline - time.monotonic(), 0))
        results.setdefault(name, TIMEOUT)  # a late answer is ignored: the dict is ours alone now
    states = {name: results[name] for name in CHECKS}
    for name in CHECKS:
        reached = results.get(name + MASTER_SUFFIX)
        if reached and states[name] == OK:
            states[name + MASTER_SUFFIX] = reached
    return states


MASTER_SUFFIX = "_master"


def _run(
    name: str, check: Callable[[Flask], str | None], app: Flask, lock: threading.Lock, results: dict[str, str]
) -> None:
    try:
        reached = check(app)
        if reached:
            results.setdefault(name + MASTER_SUFFIX, reached)
    except Exception as exc:  # whatever the driver raises, the dependency is not ready
        log.warning("Readiness: the %s check failed: %s: %s", name, type(exc).__name__, exc)
        results.setdefault(name, ERROR)
    else:
        results.setdefault(name, OK)
    finally:
        lock.release()
