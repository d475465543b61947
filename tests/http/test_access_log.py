"""The access log at INFO has one line per page view: static files and the live pages' polls are
logged at DEBUG (docs/operations.md, "Logs"), by the development server and by gunicorn."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import requests
from werkzeug.serving import make_server

from tests.conftest import PASSWORD

PATHS = ["/login", "/static/favicon.svg", "/static/css/app.css", "/webhooks/live?ids=WH-1", "/webhooks/WH-1/live"]


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app behind werkzeug's server (what ``make run`` starts), in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def request_lines(caplog, served: str, vendor) -> list[logging.LogRecord]:
    """Log in, then ask for each of PATHS; the access lines the server logged."""
    with requests.Session() as session:
        session.post(f"{served}/login", data={"email": vendor.email, "password": PASSWORD}, timeout=10)
        for path in PATHS:
            session.get(served + path, timeout=10)
        session.get(f"{served}/login", timeout=10)  # the last line: the server logs after answering
    # werkzeug writes the line after the answer: wait for the last one.
    for _ in range(200):
        if sum("GET /login" in record.getMessage() for record in caplog.records) == 2:
            break
        threading.Event().wait(0.02)
    return [record for record in caplog.records if record.name == "werkzeug"]


def test_static_files_and_polls_are_not_logged_at_info(app, vendor, served, caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    lines = [record.getMessage() for record in request_lines(caplog, served, vendor)]
    assert [line for line in lines if "GET /login" in line], lines
    assert any("POST /login" in line for line in lines), lines
    assert not [line for line in lines if "/static/" in line or "/live" in line], lines


def test_with_debug_they_are_logged_at_debug(app, vendor, served, caplog):
    caplog.set_level(logging.DEBUG, logger="werkzeug")
    records = request_lines(caplog, served, vendor)
    levels = {record.getMessage().split('"')[1].split()[1]: record.levelname for record in records}
    assert levels["/static/favicon.svg"] == levels["/webhooks/WH-1/live"] == "DEBUG", levels
    assert levels["/webhooks/live?ids=WH-1"] == "DEBUG", levels
    assert levels["/login"] == "INFO", levels


def test_gunicorn_access_lines_of_static_files_are_quiet(app, caplog):
    caplog.set_level(logging.INFO, logger="gunicorn.access")
    access = logging.getLogger("gunicorn.access")
    line = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'  # gunicorn's default format
    for path in ("/static/css/app.css", "/webhooks"):
        atoms = {"h": "127.0.0.1", "l": "-", "u": "-", "t": "[now]", "r": f"GET {path} HTTP/1.1", "s": "200",
                 "b": "10", "f": "-", "a": "test", "U": path}  # fmt: skip
        access.info(line, atoms)
    assert [record.args["U"] for record in caplog.records if record.name == "gunicorn.access"] == ["/webhooks"]
