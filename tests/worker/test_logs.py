"""``LOG_FORMAT=json``: one JSON object per line from the worker and the web processes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import make_webhook
from tests.engine import ROOT, api_token, start_worker, stop, worker_env
from tests.servers import free_port
from webhookapp.infra import logs
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as a JSON object: a line that is not one fails the test."""
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry), line
        assert datetime.fromisoformat(entry["time"]).utcoffset().total_seconds() == 0
        entries.append(entry)
    return entries


def wait_for_line(path: str, condition, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = json_lines(Path(path).read_text())
        if any(condition(entry) for entry in entries):
            return entries
        time.sleep(0.1)
    raise AssertionError(f"no such line in {Path(path).read_text()!r}")


def test_the_formatter_writes_one_object_with_the_ids_and_the_traceback():
    formatter = logs.JsonFormatter()
    record = logging.LogRecord(
        "webhookapp.engine.delivery.recording", logging.INFO, __file__, 1, "%s failed", ("WH-1",), None
    )
    record.webhook_id, record.attempt_id = "WH-1", 42
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "WH-1 failed" and entry["level"] == "INFO"
    assert entry["logger"] == "webhookapp.engine.delivery.recording"
    assert entry["webhook_id"] == "WH-1" and entry["attempt_id"] == 42 and "event_id" not in entry
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    with logs.context(event_id="EV-1"):
        line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["event_id"] == "EV-1" and "ValueError: line one\nline two" in entry["exc_info"]
    assert "event_id" not in json.loads(formatter.format(record))  # the context ended with the block


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.configure("xml")


def test_the_worker_logs_a_failed_delivery_as_json_with_its_ids(app, client, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/broken", status=500))
    worker = start_worker(app, LOG_FORMAT="json", WEBHOOK_RETRY_BASE=60)
    try:
        token = api_token(vendor.account)
        client.post("/public/v1/events", json={"object_class": "fulfillment_request", "product_id": hook.product_id},
                    headers={"Authorization": f"ApiKey {token}"})  # fmt: skip
        handler.wait_for("/broken", 1, timeout=15)
        entries = wait_for_line(worker.log_path, lambda entry: entry.get("webhook_id") == hook.id)
    finally:
        stop(worker)
    [failure] = [entry for entry in entries if entry.get("webhook_id") == hook.id]
    db.session.rollback()
    attempt = db.session.scalar(db.select(Attempt).where(Attempt.webhook_id == hook.id))
    assert failure["attempt_id"] == attempt.id and failure["attempt"] == 1
    assert failure["level"] == "INFO" and failure["logger"] == "webhookapp.engine.delivery.recording"
    assert "HTTP 500" in failure["message"]


def test_the_web_processes_log_as_json_with_the_event_id(app, vendor):
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    port = free_port()
    # Nothing listens at the Redis address: the event is stored, waking the workers fails (logged).
    env = worker_env(app, LOG_FORMAT="json", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    with log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    web.log_path = log.name
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, Path(log.name).read_text()
                time.sleep(0.1)
        response = requests.post(
            f"http://127.0.0.1:{port}/public/v1/events",
            json={"object_class": "fulfillment_request", "product_id": hook.product_id},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 202
        event_id = response.json()["id"]
        # gunicorn writes the access line after the answer: the last line to wait for.
        entries = wait_for_line(log.name, lambda entry: "POST /public/v1/events" in entry["message"])
    finally:
        stop(web)
    [wake] = [entry for entry in entries if entry.get("event_id") == event_id]
    assert wake["logger"] == "webhookapp.engine.dispatch" and wake["level"] == "WARNING"
    assert "Waking the workers could not reach Redis" in wake["message"] and "Said once" in wake["message"]
    assert any(entry["logger"] == "gunicorn.error" and "Booting worker" in entry["message"] for entry in entries)
    assert any(entry["logger"] == "gunicorn.access" for entry in entries)
