"""Flask-Migrate: ``db upgrade`` builds the schema on a fresh database and matches the models.

SQLite only: under ``TEST_DATABASE_URL`` the shared PostgreSQL database belongs to the ``app``
fixture, which builds it with ``create_all``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Connection, create_engine, inspect, text

from webhookapp import create_app
from webhookapp.core import scopes
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import tenancy
from webhookapp.models.tenancy import digest

pytestmark = [
    pytest.mark.usefixtures("keep_logging"),
    pytest.mark.skipif(
        bool(os.environ.get("TEST_DATABASE_URL")), reason="migrations are checked on a fresh SQLite file"
    ),
]




@pytest.fixture
def fresh_app(tmp_path) -> Iterator[Flask]:
    """An app on a new, empty SQLite file (no app context held open)."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrated.sqlite'}"})
    yield app
    with app.app_context():
        dispose_engines()


def tables(app: Flask) -> set[str]:
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_and_check_finds_no_difference(fresh_app):
    """Runs under warnings-as-errors, so env.py may not use deprecated Flask-SQLAlchemy calls either."""
    runner = fresh_app.test_cli_runner()
    assert tables(fresh_app) == set()

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with fresh_app.app_context():
        expected = set(db.metadata.tables)
    assert tables(fresh_app) == expected | {"alembic_version"}
    assert {"accounts", "users", "products", "api_tokens", "webhooks", "wizard_drafts"} <= expected

    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_check_fails_on_a_database_that_is_not_migrated(fresh_app):
    """Control: ``db check`` does report a problem, so the test above can fail."""
    result = fresh_app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code != 0


def test_tokens_made_before_scopes_keep_every_scope(fresh_app):
    """0013: a token row from 0010 gets every scope and no expiry; its use still authenticates."""
    runner = fresh_app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade", "0010"])
    assert result.exit_code == 0, result.output
    engine = create_engine(fresh_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO accounts (id, name, kind, created_at) "
                                    "VALUES ('VA-000-001', 'Old', 'vendor', '2026-01-01 00:00:00')"))  # fmt: skip
            connection.execute(text(
                "INSERT INTO api_tokens (account_id, name, token_hash, prefix, is_platform, created_at) "
                "VALUES ('VA-000-001', 'old', :digest, 'whk_old', false, '2026-01-01 00:00:00')"
            ), {"digest": digest("whk_old-token")})  # fmt: skip
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with engine.connect() as connection:
            row = connection.execute(text("SELECT scopes, expires_at FROM api_tokens")).one()
    finally:
        engine.dispose()
    assert row.scopes.split() == list(scopes.ALL_SCOPES) and row.expires_at is None
    with fresh_app.app_context():
        token = tenancy.authorize("ApiKey whk_old-token", scopes.WEBHOOKS_SECRETS, "192.0.2.7")
        assert token.name == "old" and token.last_used_address == "192.0.2.7"


def add_old_vendor(connection: Connection, at: str) -> None:
    """Vendor VA-000-001 and its product PRD-000-000-001, as an older release stored them."""
    connection.execute(text("INSERT INTO accounts (id, name, kind, created_at) "
                            "VALUES ('VA-000-001', 'Old', 'vendor', :t)"), {"t": at})  # fmt: skip
    connection.execute(text("INSERT INTO products (id, name, vendor_id, dynamic_validation, created_at) "
                            "VALUES ('PRD-000-000-001', 'P', 'VA-000-001', false, :t)"), {"t": at})  # fmt: skip


def test_trigger_now_counts_come_from_the_audit_trail(fresh_app):
    """0016: an event webhook's Trigger Now presses still in the audit trail, never more than its
    events; a validation webhook's presses count no event there, so none."""
    runner = fresh_app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade", "0015"])
    assert result.exit_code == 0, result.output
    at = "2026-01-01 00:00:00"
    engine = create_engine(fresh_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.begin() as connection:
            add_old_vendor(connection, at)
            for webhook_id, type_, events, presses in (("WH-000-000-001", "event", 5, 2),
                                                       ("WH-000-000-002", "event", 1, 3),
                                                       ("WH-000-000-003", "validator", 4, 4)):  # fmt: skip
                connection.execute(text(
                    "INSERT INTO webhooks (id, account_id, product_id, label, description, active, out_of_order,"
                    " object_class, type, http_method, external_url, jwt_secret_encrypted, headers, data, created_at,"
                    " modified_at, events_count, triggers_count, success_count, failure_count,"
                    " failures_since_last_success, trigger_attempts, lease_attempt) VALUES (:id, 'VA-000-001',"
                    " 'PRD-000-000-001', :id, '', true, false, 'fulfillment_request', :type, 'POST',"
                    " 'https://h.example/', 'sealed', '{}', '{}', :t, :t, :events, 0, 0, 0, 0, 0, 0)"
                ), {"id": webhook_id, "type": type_, "t": at, "events": events})  # fmt: skip
                for _ in range(presses):
                    connection.execute(text(
                        "INSERT INTO audit_entries (account_id, at, actor_kind, actor_label, action, object_type,"
                        " object_id) VALUES ('VA-000-001', :t, 'user', 'u@a.test', 'webhook.triggered', 'webhook', :id)"
                    ), {"id": webhook_id, "t": at})  # fmt: skip
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, trigger_now_count FROM webhooks")).all()
            counts = {row[0]: row[1] for row in rows}
    finally:
        engine.dispose()
    assert counts == {"WH-000-000-001": 2, "WH-000-000-002": 1, "WH-000-000-003": 0}


@pytest.mark.parametrize("with_events", [False, True])
def test_the_matches_backfill_is_done_at_once_only_where_no_event_is_stored(fresh_app, with_events):
    """0026: a database with events must run ``events backfill-matches``; a new one need not."""
    runner = fresh_app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade", "0025"])
    assert result.exit_code == 0, result.output
    engine = create_engine(fresh_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        if with_events:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO accounts (id, name, kind, created_at) "
                                        "VALUES ('VA-000-001', 'Old', 'vendor', '2026-01-01 00:00:00')"))  # fmt: skip
                connection.execute(text(
                    "INSERT INTO events (id, account_id, object_class, product_id, webhook_ids, created_at) VALUES"
                    " ('EV-000-000-001', 'VA-000-001', 'fulfillment_request', 'PRD-1', '[]', '2026-01-01 00:00:00')"
                ))  # fmt: skip
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with engine.connect() as connection:
            done = connection.execute(text("SELECT done FROM backfills WHERE name = 'event_matches'")).scalar_one()
    finally:
        engine.dispose()
    assert bool(done) is not with_events


def test_attempt_counts_are_unknown_until_the_backfill_counts_them(fresh_app):
    """0027: the webhooks there are get no count (NULL, never read) until ``attempts
    backfill-counts``; a webhook made after the upgrade starts at 0."""
    runner = fresh_app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade", "0026"])
    assert result.exit_code == 0, result.output
    at = "2026-01-01 00:00:00"
    webhook = (
        "INSERT INTO webhooks (id, account_id, product_id, label, description, active, out_of_order, object_class,"
        " type, http_method, external_url, jwt_secret_encrypted, headers, data, created_at, modified_at,"
        " events_count, triggers_count, success_count, failure_count, failures_since_last_success,"
        " trigger_attempts, lease_attempt) VALUES (:id, 'VA-000-001', 'PRD-000-000-001', :id, '', true, false,"
        " 'fulfillment_request', 'event', 'POST', 'https://h.example/', 'sealed', '{}', '{}', :t, :t, 0, 0, 0, 0,"
        " 0, 0, 0)"
    )
    attempt = (
        "INSERT INTO attempts (webhook_id, kind, number, started_at, duration_ms, success, request_method,"
        " request_url, request_headers, response_truncated) VALUES (:id, 'trigger', 1, :t, 1.0, true, 'POST',"
        " 'https://h.example/', '{}', false)"
    )
    engine = create_engine(fresh_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.begin() as connection:
            add_old_vendor(connection, at)
            connection.execute(text(webhook), {"id": "WH-000-000-001", "t": at})
            for _ in range(3):
                connection.execute(text(attempt), {"id": "WH-000-000-001", "t": at})
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with engine.begin() as connection:
            connection.execute(text(webhook), {"id": "WH-000-000-002", "t": at})
        counts = "SELECT id, attempts_kept FROM webhooks ORDER BY id"
        with engine.connect() as connection:
            before = connection.execute(text(counts)).all()
        with fresh_app.app_context():  # as ``flask`` gives its commands
            result = runner.invoke(args=["attempts", "backfill-counts", "--verbose"])
        assert result.exit_code == 0, result.output
        assert "1 webhooks counted" in result.output
        with engine.connect() as connection:
            after = connection.execute(text(counts)).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in before] == [("WH-000-000-001", None), ("WH-000-000-002", 0)]
    assert [tuple(row) for row in after] == [("WH-000-000-001", 3), ("WH-000-000-002", 0)]
