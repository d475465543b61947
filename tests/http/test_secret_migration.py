"""Migrations 0011 and 0015 (docs/operations.md, "Upgrading"): a database of the release before,
with plain secrets, is encrypted in two steps; during the roll the new code keeps the plain
columns written for the old workers; afterwards no plain column is left and deliveries verify.

On a fresh SQLite file, or on ``TEST_DATABASE_URL`` (its schema emptied first: the database must
be one of the tests' own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import jwt
import pytest
from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.orm import defer
from sqlalchemy.orm.attributes import set_committed_value

from tests.conftest import database_url
from tests.engine import api_token, post_event, run_worker
from tests.http.test_secrets_at_rest import stored_bytes
from webhookapp import create_app
from webhookapp.engine import runtime
from webhookapp.infra import crypto
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Account, Webhook, WizardDraft
from webhookapp.services import webhook_changes

# keep_logging: Alembic's env.py reconfigures logging, which later tests' caplog relies on.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("keep_logging")]

NOW = datetime(2026, 12, 1, 12, 0, 0)  # naive UTC, as the columns store it
SECRETS = {"WH-000-000-001": ("plain-secret-one-0123456789abcdef", None),
           "WH-000-000-002": ("plain-secret-two-0123456789abcdef", "plain-next-two-0123456789abcdef")}  # fmt: skip


def empty_schema() -> None:
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))


@pytest.fixture
def old_app(tmp_path, redis_url: str, handler) -> Iterator[Flask]:
    """An app whose database is at 0010, with an account, a user, a draft and plain secrets."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url(tmp_path), "REDIS_URL": redis_url})
    with app.app_context():
        empty_schema()
        assert app.test_cli_runner().invoke(args=["db", "upgrade", "0010"]).exit_code == 0
        with db.engine.begin() as connection:
            load_0010(connection, handler.behave("/old"))
        yield app
        runtime.of(app).close()
        db.session.remove()
        empty_schema()
        dispose_engines()


def load_0010(connection, url: str) -> None:
    at = {"t": NOW}
    connection.execute(
        text("INSERT INTO accounts (id, name, kind, created_at) VALUES ('VA-000-001', 'A', 'vendor', :t)"), at
    )
    connection.execute(
        text("INSERT INTO products (id, name, vendor_id, dynamic_validation, created_at) "
             "VALUES ('PRD-000-000-001', 'P', 'VA-000-001', false, :t)"), {"t": NOW})  # fmt: skip
    connection.execute(
        text("INSERT INTO users (email, name, password_hash, is_admin, account_id, created_at, session_token) "
             "VALUES ('u@a.test', 'U', 'x', false, 'VA-000-001', :t, '0123456789abcdef0123456789abcdef')"),
        at,
    )
    user_id = connection.execute(text("SELECT id FROM users")).scalar_one()
    connection.execute(
        text("INSERT INTO wizard_drafts (id, user_id, data, completed, updated_at) VALUES ('d1', :u, :data, '[]', :t)"),
        {"u": user_id, "t": NOW, "data": json.dumps({"label": "L", "jwt_secret": "draft-plain-secret-0123456789"})},
    )
    for webhook_id, (secret, next_secret) in SECRETS.items():
        connection.execute(
            text("""INSERT INTO webhooks (id, account_id, product_id, label, description, active, out_of_order,
                object_class, type, http_method, external_url, jwt_secret, jwt_secret_next, headers, data, created_at,
                modified_at, events_count, triggers_count, success_count, failure_count, failures_since_last_success,
                trigger_attempts, lease_attempt)
                VALUES (:id, 'VA-000-001', 'PRD-000-000-001', :id, '', true, false, 'fulfillment_request', 'event',
                'POST', :url, :secret, :next, '{}', '{}', :t, :t, 0, 0, 0, 0, 0, 0, 0)"""),
            {"id": webhook_id, "url": url, "secret": secret, "next": next_secret, "t": NOW},
        )


def plain_columns() -> dict[str, tuple[str | None, str | None]]:
    rows = db.session.execute(text("SELECT id, jwt_secret, jwt_secret_next FROM webhooks")).all()
    return {row[0]: (row[1], row[2]) for row in rows}


# Columns added after 0.3.0, whose code the roll below plays (at 0014 they do not exist yet).
# What the code reads of those columns before they exist: their defaults (loaded, never written).
ABSENT_DEFAULTS = {
    "signature_format": "jwt", "signature_switch_pending": False, "trigger_message_id": None,
    "retry_asked_at": None, "disabled_reason": None, "trigger_traceparent": None,
    "tls_client_cert": None, "tls_client_key_encrypted": None, "tls_ca_bundle": None, "attempts_kept": None,
    "trigger_serial": 0,
}  # fmt: skip
AFTER_0_3_0 = [defer(Webhook.trigger_now_count)] + [defer(getattr(Webhook, name)) for name in ABSENT_DEFAULTS]


def test_0010_upgraded_in_two_steps_has_its_secrets_encrypted_and_delivers(old_app, handler):
    runner = old_app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade", "0014"])
    assert result.exit_code == 0, result.output
    db.session.remove()
    for webhook_id, (secret, next_secret) in SECRETS.items():
        hook = db.session.get(Webhook, webhook_id, options=AFTER_0_3_0)
        assert hook is not None and (hook.jwt_secret, hook.jwt_secret_next) == (secret, next_secret)
    draft = db.session.get(WizardDraft, "d1")
    assert draft is not None and draft.data["jwt_secret"] == "draft-plain-secret-0123456789"
    assert "jwt_secret" not in draft.stored_data

    # The roll: the new code writes the plain columns too, so old workers still sign.
    hook = db.session.get(Webhook, "WH-000-000-001", options=AFTER_0_3_0)
    assert hook is not None
    for name, value in ABSENT_DEFAULTS.items():
        set_committed_value(hook, name, value)
    webhook_changes.update_webhook(hook, {"jwt_secret": "changed-by-new-code-0123456789ab"})
    assert plain_columns()["WH-000-000-001"] == ("changed-by-new-code-0123456789ab", None)
    # An old process changes a secret meanwhile: its plain column alone.
    db.session.execute(text("UPDATE webhooks SET jwt_secret = 'changed-by-old-code-0123456789ab' "
                            "WHERE id = 'WH-000-000-002'"))  # fmt: skip
    db.session.commit()

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    db.session.remove()
    columns = {column["name"] for column in inspect(db.engine).get_columns("webhooks")}
    assert "jwt_secret" not in columns and "jwt_secret_next" not in columns
    rows = db.session.execute(text("SELECT id, jwt_secret_encrypted, jwt_secret_next_encrypted FROM webhooks")).all()
    assert all(crypto.is_encrypted(row[1]) for row in rows)
    expected = {"WH-000-000-001": "changed-by-new-code-0123456789ab",
                "WH-000-000-002": "changed-by-old-code-0123456789ab"}  # fmt: skip
    for webhook_id, secret in expected.items():
        hook = db.session.get(Webhook, webhook_id)
        assert hook is not None and hook.jwt_secret == secret
    assert db.session.get(Webhook, "WH-000-000-002").jwt_secret_next == "plain-next-two-0123456789abcdef"

    # What docs/operations.md says to run erases the plain text from the dropped columns' pages.
    db.session.remove()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("VACUUM")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # the log's old frames hold them too
        else:
            connection.exec_driver_sql("VACUUM FULL webhooks, wizard_drafts")
    dump = stored_bytes(old_app)
    plain = [secret for pair in SECRETS.values() for secret in pair if secret] + list(expected.values())
    assert not [secret for secret in plain if secret.encode() in dump]

    account = db.session.get(Account, "VA-000-001")
    status, _ = post_event(old_app.test_client(), api_token(account), object_class="fulfillment_request",
                           product_id="PRD-000-000-001")  # fmt: skip
    assert status == 202
    run_worker(old_app)
    received = handler.wait_for("/old", 2)
    for request in received:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        webhook_id = jwt.decode(token, options={"verify_signature": False})["webhook_id"]
        jwt.decode(token, expected[webhook_id], algorithms=["HS256"])
