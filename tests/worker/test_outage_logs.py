"""Loops that reach Redis a few times a second say once that it is gone, and once that it is back
(docs/operations.md, "Logs"), not on every turn while it is out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from webhookapp.engine import dispatch
from workers.__main__ import run_cron


def messages(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


def wait_until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_cron_warns_once_per_redis_outage_and_says_when_it_is_back(app, redis_server, caplog):
    caplog.set_level(logging.DEBUG, logger="workers")
    stop = threading.Event()
    cron = threading.Thread(target=run_cron, args=(app, stop, 1), daemon=True)
    cron.start()
    try:
        redis_server.stop()
        # Several turns of the loop (one every 0.2 s while the jobs stay due) meet no Redis.
        wait_until(lambda: len(messages(caplog, logging.DEBUG, "Cron still cannot reach Redis")) >= 4, "4 turns")
        redis_server.start()
        wait_until(lambda: messages(caplog, logging.INFO, "Cron reached Redis again"), "the recovery line")
    finally:
        stop.set()
        cron.join(timeout=10)
    [warning] = messages(caplog, logging.WARNING, "Cron could not reach Redis")
    assert "the periodic jobs wait for it. Said once until it is back." in warning
    [back] = messages(caplog, logging.INFO, "Cron reached Redis again")
    assert back.startswith("Cron reached Redis again after ") and back.endswith(" s.")


def test_the_doorbell_wait_warns_once_per_redis_outage(app, redis_server, caplog):
    caplog.set_level(logging.DEBUG, logger=dispatch.log.name)
    assert dispatch.await_doorbell(0.01) is False  # nobody rang; Redis answered
    redis_server.stop()
    for _ in range(3):
        assert dispatch.await_doorbell(0.01) is False
    redis_server.start()
    assert dispatch.await_doorbell(0.01) is False
    assert len(messages(caplog, logging.WARNING, "Waiting for the doorbell could not reach Redis")) == 1
    assert len(messages(caplog, logging.DEBUG, "Waiting for the doorbell still cannot reach Redis")) == 2
    assert len(messages(caplog, logging.INFO, "Waiting for the doorbell reached Redis again")) == 1
