"""Secrets encrypted at rest (docs/security.md, "Secrets at rest"): what the database holds, what
handlers still verify, key rotation with ``flask secrets reencrypt``, and the errors of a wrong
key or a moved ciphertext, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from pathlib import Path

import jwt
import pyotp
import pytest
from flask import Flask
from sqlalchemy import text

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.pages import Wizard
from webhookapp import create_app
from webhookapp.infra import crypto
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Attempt, User, Webhook
from webhookapp.services import two_factor

URL = "/public/v1/notifications/webhooks"
WIZARD_SECRET = "wizard-typed-secret-7f3a9c41d2-0123456789"
API_SECRET = "api-chosen-secret-55e1b0c8a9-0123456789ab"
DRAFT_SECRET = "draft-left-open-secret-0d4e6f-0123456789"
PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"


def api_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {token}"}


def forms_of(secret: str) -> list[bytes]:
    """The secret as a dump could show it: itself, base64 (standard and URL-safe, with and without
    padding), hex in either case."""
    raw = secret.encode()
    encoded = [base64.b64encode(raw), base64.urlsafe_b64encode(raw)]
    return [raw, *encoded, *(item.rstrip(b"=") for item in encoded), raw.hex().encode(), raw.hex().upper().encode()]


def stored_bytes(app: Flask) -> bytes:
    """Every byte the database keeps: the SQLite file and its write-ahead log, or a ``pg_dump``."""
    db.session.remove()
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    pg_dump = PG_DUMP if os.path.exists(PG_DUMP) else shutil.which("pg_dump")
    assert pg_dump, "pg_dump (version 15) is needed for this test"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run([pg_dump, "--no-owner", dsn], check=True, capture_output=True).stdout


def deliver(app: Flask, client, token: str, hook_id: str, path: str, handler) -> str:
    """Post an event for the webhook, run the worker, return the JWT the handler received."""
    before = len(handler.requests_to(path))
    webhook = db.session.get(Webhook, hook_id)
    assert webhook is not None
    status, _ = post_event(client, token, object_class=webhook.object_class, product_id=webhook.product_id)
    assert status == 202
    run_worker(app)
    received = handler.wait_for(path, before + 1)[-1]
    return received.headers["Authorization"].removeprefix("Bearer ")


def test_the_database_holds_no_secret_and_deliveries_verify(app, client, auth, vendor, handler):
    auth.login()
    product = vendor.products[0].id
    wizard = Wizard(client, product)
    wizard.values["http"]["jwt_secret"] = WIZARD_SECRET
    wizard.values["http"]["external_url"] = handler.behave("/wizard")
    wizard.complete("general", "product", "type", "http", "data")
    left_open = Wizard(client, product)  # a draft kept with its typed secret
    left_open.values["http"]["jwt_secret"] = DRAFT_SECRET
    left_open.complete("general", "product", "type", "http")
    assert left_open.draft().data["jwt_secret"] == DRAFT_SECRET

    token = api_token(vendor.account)
    created = client.post(URL, headers=api_auth(token), json={
        "label": "API hook", "active": True, "product_id": product, "object_class": "fulfillment_request",
        "type": "event", "http_method": "POST", "external_url": handler.behave("/api"), "jwt_secret": API_SECRET,
    })  # fmt: skip
    assert created.status_code == 201, created.get_json()
    api_hook = created.get_json()["id"]
    rotated = client.post(f"{URL}/{api_hook}/next-secret", headers=api_auth(token))
    next_secret = rotated.get_json()["jwt_secret_next"]
    assert rotated.status_code == 200 and next_secret and rotated.get_json()["jwt_secret"] == API_SECRET
    wizard_hook = db.session.scalars(db.select(Webhook).where(Webhook.label == "Orders hook")).one().id

    dump = stored_bytes(app)
    assert b"enc1:" in dump  # the encrypted secrets are there: the dump is not empty of them
    for secret in (WIZARD_SECRET, API_SECRET, DRAFT_SECRET, next_secret):
        leaked = [form for form in forms_of(secret) if form in dump]
        assert not leaked, (secret, leaked)

    for hook_id, path, secret in ((wizard_hook, "/wizard", WIZARD_SECRET), (api_hook, "/api", API_SECRET)):
        claims = jwt.decode(deliver(app, client, token, hook_id, path, handler), secret, algorithms=["HS256"])
        assert claims["webhook_id"] == hook_id
    switched = client.post(f"{URL}/{api_hook}/next-secret/switch", headers=api_auth(token))
    assert switched.get_json()["jwt_secret"] == next_secret
    jwt.decode(deliver(app, client, token, api_hook, "/api", handler), next_secret, algorithms=["HS256"])


def secret_number(n: int) -> str:
    return f"secret-number-{n}-xyz-0123456789abcdef"


def rekey(app: Flask, keys: str) -> crypto.SecretBox:
    """The processes restarted with another ``WEBHOOK_ENCRYPTION_KEYS``."""
    app.config["WEBHOOK_ENCRYPTION_KEYS"] = keys
    return crypto.install(app)


def key_ids() -> set[str | None]:
    db.session.rollback()
    rows = db.session.execute(text("SELECT jwt_secret_encrypted, jwt_secret_next_encrypted FROM webhooks")).all()
    return {crypto.key_id_of(value) for row in rows for value in row if value is not None}


def test_an_old_key_delivers_until_reencrypt_then_can_be_dropped(app, client, runner, vendor, handler, tmp_path):
    old_keys = app.config["WEBHOOK_ENCRYPTION_KEYS"]
    old_id = crypto.current().current_key_id
    hooks = [make_webhook(vendor, external_url=handler.behave(f"/h{n}"), jwt_secret=secret_number(n)) for n in range(3)]
    from webhookapp.services import secret_rotation

    secret_rotation.generate_next(hooks[0], "the-next-secret-abc")
    ids = [hook.id for hook in hooks]
    token = api_token(vendor.account)
    new = crypto.new_key()
    box = rekey(app, f"{new},{old_keys}")
    assert key_ids() == {old_id}
    # Under the old key, still delivered and verified with the plain secret.
    jwt.decode(deliver(app, client, token, ids[1], "/h1", handler), secret_number(1), algorithms=["HS256"])

    # Without the old key a start refuses, naming it.
    overrides = {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "WEBHOOK_ENCRYPTION_KEYS": new}
    with pytest.raises(crypto.CryptoError, match=f"does not hold key {old_id}.*webhook WH-"):
        create_app("testing", overrides)

    result = runner.invoke(args=["secrets", "reencrypt", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    expected = (
        f"Re-encrypted the secrets of 3 rows under key {box.current_key_id} "
        "(3 in webhooks, 0 in users, 0 in wizard_drafts)"
    )
    assert expected in result.output
    assert key_ids() == {box.current_key_id}
    again = runner.invoke(args=["secrets", "reencrypt"])
    assert "secrets of 0 rows" in again.output and "3 rows were under it already" in again.output

    dropped = create_app("testing", overrides)  # the old key dropped: the start accepts the ring
    with dropped.app_context():
        hook = db.session.get(Webhook, ids[0])
        assert hook is not None and hook.jwt_secret == secret_number(0)
        assert hook.jwt_secret_next == "the-next-secret-abc"
        db.session.remove()
        dispose_engines()
    rekey(app, new)
    jwt.decode(deliver(app, client, token, ids[2], "/h2", handler), secret_number(2), algorithms=["HS256"])


def test_new_key_prints_a_usable_key(runner):
    result = runner.invoke(args=["secrets", "new-key"])
    assert result.exit_code == 0
    [key] = crypto.parse_keys(result.output.strip())
    assert len(key.id) == 8


def test_a_wrong_key_stops_the_start_with_its_id(app, vendor):
    make_webhook(vendor, jwt_secret="stored-under-the-testing-key")
    stored_id = crypto.current().current_key_id
    db.session.remove()
    overrides = {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                 "WEBHOOK_ENCRYPTION_KEYS": crypto.new_key()}  # fmt: skip
    with pytest.raises(crypto.CryptoError) as refused:
        create_app("testing", overrides)
    assert f"WEBHOOK_ENCRYPTION_KEYS does not hold key {stored_id}" in str(refused.value)
    assert "flask secrets reencrypt" in str(refused.value)


def test_a_ciphertext_copied_into_another_row_does_not_decrypt(app, client, vendor, handler):
    victim = make_webhook(vendor, external_url=handler.behave("/victim"), jwt_secret="the-victim-secret-1")
    moved = make_webhook(vendor, external_url=handler.behave("/moved"), jwt_secret="another-secret-2")
    victim_id, moved_id = victim.id, moved.id
    db.session.execute(
        text("UPDATE webhooks SET jwt_secret_encrypted = :stored WHERE id = :id"),
        {"stored": victim.jwt_secret_encrypted, "id": moved_id},
    )
    db.session.commit()
    db.session.expire_all()
    token = api_token(vendor.account)

    # The worker records the attempt as failed, with the reason, and goes on with the others.
    status, _ = post_event(client, token, object_class="fulfillment_request", product_id=victim.product_id)
    assert status == 202
    run_worker(app)
    handler.wait_for("/victim")
    db.session.rollback()
    [attempt] = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == moved_id)).all()
    assert not attempt.success and "does not open this secret for webhooks.jwt_secret" in (attempt.error or "")
    assert handler.requests_to("/moved") == []

    answer = client.get(f"{URL}/{moved_id}", headers=api_auth(token))
    assert answer.status_code == 409 and answer.get_json()["error_code"] == "SECRET_001"
    assert client.get(f"{URL}/{victim_id}", headers=api_auth(token)).get_json()["jwt_secret"] == "the-victim-secret-1"


def test_reencrypt_rewrites_two_factor_seeds_too(app, runner, vendor):
    user = vendor.user
    seed = pyotp.random_base32()
    assert two_factor.confirm_enrolment(user, seed, pyotp.TOTP(seed).now()) is not None
    old_id = crypto.current().current_key_id
    box = rekey(app, f"{crypto.new_key()},{app.config['WEBHOOK_ENCRYPTION_KEYS']}")
    result = runner.invoke(args=["secrets", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert "1 in users" in result.output
    db.session.rollback()
    stored = db.session.execute(text("SELECT totp_secret FROM users WHERE id = :id"), {"id": user.id}).scalar_one()
    assert crypto.key_id_of(stored) == box.current_key_id != old_id
    rekey(app, app.config["WEBHOOK_ENCRYPTION_KEYS"].split(",")[0])  # the old key dropped
    db.session.expire_all()
    assert two_factor.check_code(db.session.get(User, user.id), pyotp.TOTP(seed).at(time.time() + 30))
