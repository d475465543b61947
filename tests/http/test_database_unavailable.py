"""No database takes writes (a failover under way, a restart): the event API answers 503 with
``Retry-After``, never a 500, a traceback or a 202 for an event it did not commit; the pages say
the service is briefly unavailable (docs/operations.md, "Scaling out")."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import make_webhook
from tests.engine import api_token, post_event
from tests.servers import free_port
from webhookapp import create_app
from webhookapp.auth.sessions import SEEN, STARTED
from webhookapp.infra import database
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Event

BRIEFLY = "The service is briefly unavailable"


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.fixture
def refused_app(tmp_path, redis_url: str) -> Iterator[Flask]:
    """An app whose PostgreSQL refuses every connection: nothing listens on its port."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url,
                                 "WEBHOOK_START_CHECK_TIMEOUT": 1})  # fmt: skip
    yield app
    with app.app_context():
        dispose_engines()


def test_the_event_api_answers_503_with_retry_after_while_the_database_refuses(refused_app, caplog):
    caplog.set_level(logging.WARNING)
    response = refused_app.test_client().post(
        "/public/v1/events",
        json={"object_class": "fulfillment_request", "product_id": "PRD-000-000-001"},
        headers={"Authorization": "ApiKey SU-000-000-000:whatever"},
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["error_code"] == "HTTP_503" and BRIEFLY in body["errors"][0]
    no_tracebacks(caplog)
    assert any("answered 503" in record.getMessage() for record in caplog.records)


def test_a_page_says_the_service_is_briefly_unavailable(refused_app, caplog):
    caplog.set_level(logging.WARNING)
    client = refused_app.test_client()
    response = client.post("/login", data={"email": "alice@acme.test", "password": "whatever"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    page = html.unescape(response.get_data(as_text=True))
    assert "Briefly unavailable" in page and BRIEFLY in page
    no_tracebacks(caplog)


def test_a_signed_in_persons_page_says_so_too(refused_app, caplog):
    """The page's header names the signed-in user, whom only the database knows: the 503 page
    must not ask it again, which would turn the page into a 500."""
    caplog.set_level(logging.WARNING)
    client = refused_app.test_client()
    now = time.time()
    with client.session_transaction() as session:
        session.update({"_user_id": f"1:some-token:{int(now)}:0", "_fresh": True, STARTED: now, SEEN: now})
    for response in (client.get("/webhooks"), client.post("/settings/tokens", data={"name": "ci"})):
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        page = html.unescape(response.get_data(as_text=True))
        assert "Briefly unavailable" in page and BRIEFLY in page
    no_tracebacks(caplog)


@pytest.fixture
def read_only(app: Flask, postgresql: str) -> Iterator[None]:
    """New connections to the test database are read-only, as on a standby; undone afterwards."""
    set_read_only(postgresql, True)
    try:
        yield
    finally:
        set_read_only(postgresql, False)


def set_read_only(url: str, read_only: bool) -> None:
    name = db.engine.url.database
    # Through the maintenance database: a new connection to this one would be read-only itself.
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        setting = "SET default_transaction_read_only = on" if read_only else "RESET default_transaction_read_only"
        connection.execute(f'ALTER DATABASE "{name}" {setting}')
    db.session.rollback()
    dispose_engines()  # the pooled connections predate the change


@pytest.mark.postgresql
def test_a_read_only_database_gets_503_and_no_event_is_claimed(app, client, vendor, postgresql, caplog, request):
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    request.getfixturevalue("read_only")
    caplog.set_level(logging.WARNING)
    for attempt in range(3):  # the lone statement, then the same again: never a 500
        status, answer = post_event(client, token, **body, id=f"read-only-{attempt}")
        assert status == 503 and BRIEFLY in answer["errors"][0]
    no_tracebacks(caplog)
    set_read_only(postgresql, False)
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0  # not one was stored
    assert post_event(client, token, **body, id="read-only-0")[0] == 202  # the client's retry is taken


def test_only_unavailability_counts():
    assert not database.unavailable(ValueError("no"))
    assert not database.unavailable(psycopg.errors.UniqueViolation("duplicate key"))
    assert database.unavailable(psycopg.OperationalError("connection refused"))
