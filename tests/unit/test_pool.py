"""Pooled connections are pinged after resting, not on every checkout, and a dead one is replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import make_webhook
from tests.engine import api_token, post_event
from webhookapp.infra import extensions
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook


@pytest.fixture
def pings(app, monkeypatch) -> list[object]:
    """The pings the engine's dialect makes, counted (the real ping still runs)."""
    made: list[object] = []
    real = db.engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        made.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted)
    return made


def use_connection() -> None:
    db.session.execute(text("SELECT 1"))
    db.session.remove()  # back to the pool


def test_a_connection_handed_on_at_once_is_not_pinged(app, pings):
    use_connection()
    use_connection()
    use_connection()
    assert pings == []


def test_a_connection_that_rested_is_pinged(app, pings, monkeypatch):
    use_connection()
    monkeypatch.setattr(extensions, "IDLE_PING_AFTER", 0.0)
    use_connection()
    assert len(pings) == 1


@pytest.mark.postgresql  # SQLite has no server to cut a connection
def test_a_rested_connection_the_server_cut_is_replaced(app, postgresql, monkeypatch):
    first = db.session.scalar(text("SELECT pg_backend_pid()"))
    db.session.remove()
    killer = create_engine(db.engine.url, poolclass=None)
    with killer.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    killer.dispose()
    monkeypatch.setattr(extensions, "IDLE_PING_AFTER", 0.0)
    second = db.session.scalar(text("SELECT pg_backend_pid()"))  # no error: a fresh connection
    assert second != first


@pytest.mark.postgresql  # SQLite has no server to cut a connection
def test_the_event_api_keeps_working_after_the_server_cuts_its_connection(app, postgresql, client, vendor, monkeypatch):
    """The event path keeps a cursor with each pooled connection; it goes with a replaced one."""
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    db.session.remove()
    db.engine.dispose()  # from here on the pool holds the one connection the event API opens
    assert post_event(client, token, **body)[0] == 202
    pooled = db.engine.raw_connection()
    assert "ingest_cursor" in pooled.info
    pid = pooled.driver_connection.info.backend_pid
    pooled.close()
    killer = create_engine(db.engine.url, poolclass=None)
    with killer.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    monkeypatch.setattr(extensions, "IDLE_PING_AFTER", 0.0)  # the checkout finds the connection dead
    assert [post_event(client, token, **body)[0] for _ in range(3)] == [202] * 3
    assert db.session.get(Webhook, hook.id).events_count == 4
