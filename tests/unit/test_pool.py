"""Pooled connections are pinged after resting, not on every checkout, and a dead one is replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text, update

from tests.conftest import make_webhook
from tests.engine import api_token, post_event
from webhookapp.engine import triggers
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
    """The event path keeps a cursor with each pooled connection (of the engine it shares with the
    claim); it goes with a replaced one."""
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    engine = extensions.generic_plans_engine()
    assert engine is not db.engine
    db.session.remove()
    engine.dispose()  # from here on the pool holds the one connection the event API opens
    assert post_event(client, token, **body)[0] == 202
    pooled = engine.raw_connection()
    assert "ingest_cursor" in pooled.info
    pid = pooled.driver_connection.info.backend_pid
    pooled.close()
    killer = create_engine(engine.url, poolclass=None)
    with killer.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    monkeypatch.setattr(extensions, "IDLE_PING_AFTER", 0.0)  # the checkout finds the connection dead
    assert [post_event(client, token, **body)[0] for _ in range(3)] == [202] * 3
    assert db.session.get(Webhook, hook.id).events_count == 4


def prepared_plans(engine) -> tuple[int, int]:
    """Generic and custom plans made for the prepared statements of ``engine``'s pooled connection."""
    with engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements"
        ).one()
    return int(row[0]), int(row[1])


@pytest.mark.postgresql
def test_the_event_statement_and_the_claim_are_planned_once_per_connection(app, vendor, postgresql, client):
    """The event API's statement and the claim run on connections of their own
    (:data:`.GENERIC_PLANS`) that keep one generic plan each; PostgreSQL would plan them again on
    every call otherwise. The app's other connections keep PostgreSQL's own choices."""
    engine = extensions.generic_plans_engine()
    assert engine is not db.engine
    engine.dispose()  # one connection, used in turn by the events and claims below
    hook = make_webhook(vendor)
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    for _ in range(8):  # psycopg prepares a statement on its fifth run
        assert post_event(client, token, **body)[0] == 202
        [claimed] = triggers.claim_due(10)
        db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(triggers.RELEASED_LEASE))
        db.session.commit()
    assert claimed.webhook.id == hook.id
    generic, custom = prepared_plans(engine)
    # Without the settings each prepared statement's first five runs would be planned anew, and
    # an idle event's statement on every run after them too.
    assert generic >= 4 and custom == 0, (generic, custom)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW enable_seqscan").scalar() == "off"
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
        assert connection.exec_driver_sql("SHOW enable_seqscan").scalar() == "on"


def test_sqlite_has_no_engine_for_the_claim_of_its_own(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the engine of its own is PostgreSQL's")
    assert extensions.generic_plans_engine() is db.engine
