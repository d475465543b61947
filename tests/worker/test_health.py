"""``/healthz`` and ``/readyz``: a real database and a real Redis, stopped, frozen or silent."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
from flask import Flask

from webhookapp import create_app
from webhookapp.ops import health

needs_private_redis = pytest.mark.skipif(
    bool(os.environ.get("TEST_REDIS_URL")), reason="stops Redis: needs the suite's private redis-server"
)


class SilentServer:
    """A TCP server that accepts connections and never says a word: a database host that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()  # the hung check gets its EOF and ends


def app_with_database(address: str, redis_url: str) -> Flask:
    """The app against a PostgreSQL URL at ``address``; its start gives up on the key check after
    a second (the testing default waits five) when the database does not answer."""
    url = f"postgresql+psycopg://postgres@{address}/none"
    return create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url,
                                  "WEBHOOK_START_CHECK_TIMEOUT": 1})  # fmt: skip


def test_healthz_answers_without_login_or_database(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ok_when_the_database_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "redis": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_health_checks_are_not_throttled_nor_touch_the_session(client):
    for _ in range(50):
        response = client.get("/readyz")
        assert response.status_code == 200 and "Set-Cookie" not in response.headers


@needs_private_redis
def test_readyz_names_redis_when_it_is_stopped(client, redis_server):
    redis_server.stop()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        # "error", not "timeout": the refusal was seen before the probe's deadline, not waited out.
        assert response.get_json() == {"database": "ok", "redis": "error"}
        assert client.get("/healthz").status_code == 200  # the process itself is fine
    finally:
        redis_server.start()
    assert client.get("/readyz").status_code == 200


@needs_private_redis
def test_readyz_gives_up_on_a_frozen_redis_after_a_second(client, redis_server):
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    # "timeout", not the "error" the driver's own (longer) timeout would give: the probe's
    # deadline decided. It waited that deadline out (a busy machine only makes this longer), and
    # did not hang on.
    assert response.status_code == 503 and response.get_json()["redis"] == "timeout"
    assert 0.9 * health.CHECK_TIMEOUT < elapsed < 5 * health.CHECK_TIMEOUT


def test_readyz_gives_up_on_a_database_that_does_not_answer(tmp_path, redis_url):
    silent = SilentServer()
    began = time.monotonic()
    client = app_with_database(f"127.0.0.1:{silent.port}", redis_url).test_client()
    # The start's key check gave up on the silent database (the driver waits about two minutes).
    assert time.monotonic() - began < 60
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.get_json() == {"database": "timeout", "redis": "ok"}
        assert elapsed < 5 * health.CHECK_TIMEOUT  # the deadline decided, not the driver's timeout
        # The hung check is still out: the next probe does not start another one, nor wait for it.
        running = client.application.extensions["webhookapp.health.running"]
        assert running["database"].locked()
        connections = len(silent.accepted)
        started = time.monotonic()
        assert client.get("/readyz").get_json()["database"] == "timeout"
        assert time.monotonic() - started < health.CHECK_TIMEOUT  # waiting would take all of it
        assert len(silent.accepted) == connections
    finally:
        silent.close()


def test_readyz_names_a_database_that_refuses_connections(redis_url):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    response = app_with_database(f"127.0.0.1:{port}", redis_url).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"database": "error", "redis": "ok"}
