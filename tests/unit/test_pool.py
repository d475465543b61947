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


def prepared_plans(engine) -> tuple[int, int]:
    """Generic and custom plans made for the prepared statements of ``engine``'s pooled connection."""
    with engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements"
        ).one()
    return int(row[0]), int(row[1])


@pytest.mark.postgresql
def test_the_claim_is_planned_once_per_connection(app, vendor, postgresql):
    """The claim runs on connections of their own (:data:`.GENERIC_PLANS`) that keep one generic
    plan; PostgreSQL would plan it again on every call otherwise. The app's other connections,
    the event API's among them, keep PostgreSQL's own choice."""
    engine = extensions.generic_plans_engine()
    assert engine is not db.engine
    engine.dispose()  # one connection, used in turn by the claims below
    hook = make_webhook(vendor)
    for _ in range(8):  # psycopg prepares a statement on its fifth run
        triggers.make_due_now(db.session.get(Webhook, hook.id), count_event=False)
        db.session.commit()
        [claimed] = triggers.claim_due(10)
        db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(triggers.RELEASED_LEASE))
        db.session.commit()
    assert claimed.webhook.id == hook.id
    generic, custom = prepared_plans(engine)
    # Without the setting the prepared statement's first five runs would each be planned anew.
    assert generic >= 2 and custom == 0, (generic, custom)
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"


def test_sqlite_has_no_engine_for_the_claim_of_its_own(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the engine of its own is PostgreSQL's")
    assert extensions.generic_plans_engine() is db.engine
