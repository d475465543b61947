"""The audit trail (docs/security.md, "Audit trail"): every change by a person, a token, the
command line or the system records exactly one entry, with its actor, object, address and
changes, in the transaction of the change; secrets never appear in an entry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.pages import Wizard
from webhookapp.core import scopes
from webhookapp.engine.maintenance import alerts
from webhookapp.infra.extensions import db
from webhookapp.models import Actor, ApiToken, AuditEntry, Webhook, audit
from webhookapp.services import secret_rotation, tokens

SECRET = "an-audited-secret-0123456789abcdefghijkl"
TYPED = "a-shared-secret"  # the wizard's secret (tests/pages.py)
AGENT = "AuditTest/1.0 (\x07bell\x1b[31m)"
HEADERS = {"User-Agent": AGENT}


def entries(*actions: str) -> list[AuditEntry]:
    """The stored entries (of ``actions``, if given), oldest first."""
    db.session.rollback()
    query = select(AuditEntry).order_by(AuditEntry.id)
    if actions:
        query = query.where(AuditEntry.action.in_(actions))
    return list(db.session.scalars(query))


def only(action: str) -> AuditEntry:
    found = entries(action)
    assert len(found) == 1, [entry.action for entry in entries()]
    return found[0]


def everything_stored() -> str:
    """Every entry as text: what a reader of the table could see."""
    columns = [column.key for column in AuditEntry.__table__.columns]
    return json.dumps([{name: str(getattr(entry, name)) for name in columns} for entry in entries()])


@pytest.fixture
def hook_fields() -> dict[str, Any]:
    return {"label": "Orders", "jwt_secret": SECRET}


@pytest.fixture
def signed_in(client, auth, vendor):
    auth.login()
    db.session.rollback()
    return client


def test_the_wizard_and_the_pages_record_each_change_by_the_user(signed_in, vendor):
    client = signed_in
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type", "http")
    create = {**wizard.values["data"], "action": "create"}
    assert client.post(wizard.url("data"), data=create, headers=HEADERS).status_code == 302
    created = only("webhook.created")
    hook_id = created.object_id
    assert (created.actor_kind, created.actor_label, created.actor_user_id) == ("user", vendor.email, vendor.user.id)
    assert (created.account_id, created.object_type, created.object_label) == (
        vendor.account.id, "webhook", "Orders hook")  # fmt: skip
    assert created.address == "127.0.0.1" and created.user_agent == "AuditTest/1.0 (bell[31m)"  # controls stripped
    assert created.changes["label"] == {"after": "Orders hook"} and "headers" not in created.changes  # none set
    assert created.changes["jwt_secret"] == {"changed": True}

    edit = {"label": "Orders v2", "description": "Watches the order queue", "active": "y",
            "external_url": "https://handler.example.com/orders", "jwt_secret": "", "http_method": "POST",
            "headers-0-name": "", "headers-0-value": "", "custom_data": '{"purpose": "demo"}',
            "action": "save"}  # fmt: skip
    assert client.post(f"/webhooks/{hook_id}/edit", data=edit).status_code == 302
    assert only("webhook.updated").changes == {"label": {"before": "Orders hook", "after": "Orders v2"}}

    refused = client.post(f"/webhooks/{hook_id}/edit", data={**edit, "external_url": "ftp://nowhere"})
    assert refused.status_code == 400 and len(entries("webhook.updated")) == 1  # refused: nothing recorded

    new_secret = "another-typed-secret-0123456789abcdefgh"
    replace = {**edit, "jwt_secret": new_secret, "change_secret": "y"}
    assert client.post(f"/webhooks/{hook_id}/edit", data=replace).status_code == 302
    assert entries("webhook.updated")[-1].changes == {"jwt_secret": {"changed": True}}

    for path, action in (("disable", "webhook.disabled"), ("enable", "webhook.enabled")):
        assert client.post(f"/webhooks/{hook_id}/{path}").status_code == 302
        assert only(action).object_id == hook_id
    assert only("webhook.disabled").changes == {"active": {"before": True, "after": False}}

    assert client.post(f"/webhooks/{hook_id}/trigger").status_code == 302
    assert only("webhook.triggered").actor_label == vendor.email
    client.post(f"/webhooks/{hook_id}/retry")  # neither Failing nor Out of order: refused
    assert entries("webhook.retried") == []

    assert client.post(f"/webhooks/{hook_id}/delete").status_code == 302
    deleted = only("webhook.deleted")
    assert (deleted.object_id, deleted.object_label) == (hook_id, "Orders v2")
    stored = everything_stored()
    assert TYPED not in stored and new_secret not in stored


def test_retry_now_of_an_out_of_order_webhook_is_recorded(signed_in, hook):
    row = db.session.get(Webhook, hook.id)
    row.out_of_order, row.failures_since_last_success = True, 10
    db.session.commit()
    assert signed_in.post(f"/webhooks/{hook.id}/retry").status_code == 302
    assert only("webhook.retried").object_id == hook.id


def test_rotation_and_reveal_are_recorded_without_the_secrets(signed_in, hook):
    client = signed_in
    assert client.post(f"/webhooks/{hook.id}/secret/discard").status_code == 302
    assert entries("webhook.next_secret_discarded") == []  # there was none: nothing changed
    assert client.post(f"/webhooks/{hook.id}/secret/next").status_code == 302
    generated = only("webhook.next_secret_generated")
    assert generated.changes == {"jwt_secret_next": {"changed": True}}
    next_secret = db.session.get(Webhook, hook.id).jwt_secret_next

    assert client.get(f"/webhooks/{hook.id}/secret?which=next").get_json() == {"jwt_secret": next_secret}
    assert client.get(f"/webhooks/{hook.id}?tab=http&reveal=secret").status_code == 200
    revealed = entries("webhook.secret_revealed")
    assert [entry.changes for entry in revealed] == [
        {"jwt_secret_next": {"revealed": True}}, {"jwt_secret": {"revealed": True}}]  # fmt: skip
    assert client.get(f"/webhooks/{hook.id}?tab=http").status_code == 200
    assert len(entries("webhook.secret_revealed")) == 2  # the masked tab reveals nothing

    assert client.post(f"/webhooks/{hook.id}/secret/switch", data={"confirm": "yes"}).status_code == 302
    assert only("webhook.secret_switched").changes == {"jwt_secret": {"changed": True},
                                                       "jwt_secret_next": {"changed": True}}  # fmt: skip
    assert client.post(f"/webhooks/{hook.id}/secret/next").status_code == 302
    assert client.post(f"/webhooks/{hook.id}/secret/discard").status_code == 302
    assert only("webhook.next_secret_discarded").actor_label == "alice@acme.test"
    stored = everything_stored()
    assert SECRET not in stored and next_secret not in stored


def test_a_secret_passed_as_before_and_after_is_still_never_stored(app, vendor):
    audit.record(Actor.system(), "webhook.updated", account_id=vendor.account.id,
                 changes={"jwt_secret": {"before": SECRET, "after": SECRET + "x"}})  # fmt: skip
    db.session.commit()
    assert only("webhook.updated").changes == {"jwt_secret": {"changed": True}}
    with pytest.raises(ValueError):
        audit.record(Actor.system(), "webhook.exploded", account_id=vendor.account.id)


def test_the_api_records_the_token_as_actor(client, vendor, handler):
    token = api_token(vendor.account)
    row = db.session.scalar(select(ApiToken).where(ApiToken.account_id == vendor.account.id))
    headers = {"Authorization": f"ApiKey {token}", "User-Agent": "connect-client/31"}
    body = {"product_id": vendor.products[0].id, "object_class": "fulfillment_request", "type": "event",
            "label": "API hook", "external_url": handler.behave("/api"), "http_method": "POST", "active": True,
            "jwt_secret": SECRET}  # fmt: skip
    created = client.post("/public/v1/notifications/webhooks", json=body, headers=headers)
    assert created.status_code == 201
    hook_id = created.get_json()["id"]
    entry = only("webhook.created")
    assert (entry.actor_kind, entry.actor_token_id, entry.actor_user_id) == ("token", row.id, None)
    assert entry.actor_label == f"{row.name} ({row.prefix}…)" and entry.user_agent == "connect-client/31"

    path = f"/public/v1/notifications/webhooks/{hook_id}"
    assert client.put(path, json={"label": "API hook 2"}, headers=headers).status_code == 200
    assert only("webhook.updated").changes == {"label": {"before": "API hook", "after": "API hook 2"}}
    assert client.put(path, json={"external_url": "nope"}, headers=headers).status_code == 400
    assert len(entries("webhook.updated")) == 1

    assert client.post(f"{path}/trigger", headers=headers).status_code == 200
    assert only("webhook.triggered").actor_kind == "token"
    run_worker(client.application)
    handler.wait_for("/api")
    attempt_id = client.get(f"{path}/attempts", headers=headers).get_json()[0]["id"]
    redelivered = client.post(f"{path}/attempts/{attempt_id}/redeliver", headers=headers)
    assert redelivered.status_code == 201
    entry = only("webhook.redelivered")
    assert entry.changes == {"attempt": {"before": attempt_id, "after": redelivered.get_json()["id"]}}
    assert client.post(f"{path}/next-secret", json={}, headers=headers).status_code in (200, 201)
    assert only("webhook.next_secret_generated").actor_kind == "token"

    status, _ = post_event(client, token, object_class="fulfillment_request", product_id=vendor.products[0].id)
    assert status == 202 and [entry.action for entry in entries()] == [
        "token.created", "webhook.created", "webhook.updated", "webhook.triggered", "webhook.redelivered",
        "webhook.next_secret_generated"]  # event ingest is not audited  # fmt: skip
    assert client.delete(path, headers=headers).status_code == 204
    assert only("webhook.deleted").actor_kind == "token"
    assert SECRET not in everything_stored()


def test_a_validation_webhook_triggered_by_the_api_is_recorded_with_its_attempt(client, vendor, handler):
    url = handler.behave("/validate", body=b'{"id": "PR-1"}')
    hook = make_webhook(vendor, type_key="fulfillment_request.validator", external_url=url)
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    answer = client.post(f"/public/v1/notifications/webhooks/{hook.id}/trigger", headers=headers)
    assert answer.status_code == 200 and answer.get_json()["validation"]["answered"] is True
    assert only("webhook.triggered").object_id == hook.id
    assert client.post("/public/v1/validations", json={"type": hook.type, "product_id": hook.product_id,
                       "request": {"id": "PR-2"}}, headers=headers).status_code == 200  # fmt: skip
    assert [entry.action for entry in entries()] == ["webhook.created", "token.created", "webhook.triggered"]


def test_send_test_request_on_the_edit_page_and_in_the_wizard(signed_in, vendor, hook, handler):
    client = signed_in
    url = handler.behave("/probe")
    data = {"label": "Orders", "description": "", "active": "y", "external_url": url, "jwt_secret": "",
            "http_method": "POST", "headers-0-name": "", "headers-0-value": "", "custom_data": "{}",
            "action": "send_test"}  # fmt: skip
    assert client.post(f"/webhooks/{hook.id}/edit", data=data).status_code == 200
    entry = only("webhook.test_request_sent")
    assert entry.object_id == hook.id and entry.changes["external_url"] == {"after": url}

    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    assert wizard.post("http", "send_test", external_url=url).status_code == 200
    sent = entries("webhook.test_request_sent")[-1]
    assert (sent.object_id, sent.object_label, sent.account_id) == (None, "Orders hook", vendor.account.id)
    assert TYPED not in everything_stored()
    assert wizard.post("http", "send_test", external_url="ftp://x").status_code == 400
    assert len(entries("webhook.test_request_sent")) == 2  # refused: nothing sent, nothing recorded


def test_redeliver_on_the_attempt_page(signed_in, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/hook"))
    signed_in.post(f"/webhooks/{hook.id}/trigger")
    run_worker(signed_in.application)
    handler.wait_for("/hook")
    attempt_id = db.session.scalar(select(db.func.min(db.text("id"))).select_from(db.table("attempts")))
    assert signed_in.post(f"/webhooks/{hook.id}/attempts/{attempt_id}/redeliver").status_code == 302
    entry = only("webhook.redelivered")
    assert (entry.actor_kind, entry.object_id, entry.changes["attempt"]["before"]) == ("user", hook.id, attempt_id)


def test_tokens_on_the_page_and_the_command_line(signed_in, runner, vendor):
    client = signed_in
    form = {"name": "ERP", "creation_key": "k" * 32, "scopes": list(scopes.ALL_SCOPES)}
    page = client.post("/settings/tokens", data=form)
    assert page.status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.name == "ERP"))
    created = only("token.created")
    assert (created.object_type, created.object_id, created.object_label) == (
        "token", str(token.id), f"ERP ({token.prefix}…)")  # fmt: skip
    assert created.actor_label == vendor.email
    again = client.post("/settings/tokens", data=form)
    assert again.status_code == 302 and len(entries("token.created")) == 1  # no second token, no second entry

    assert client.post(f"/settings/tokens/{token.id}/revoke").status_code == 302
    assert client.post(f"/settings/tokens/{token.id}/revoke").status_code == 302  # already revoked
    assert only("token.revoked").object_id == str(token.id)

    result = runner.invoke(args=["tokens", "create", "--account", vendor.account.id, "--name", "Nightly"])
    assert result.exit_code == 0, result.output
    by_cli = entries("token.created")[-1]
    assert (by_cli.actor_kind, by_cli.actor_label, by_cli.address) == ("system", "cli", None)


def test_a_failed_commit_records_nothing(app, vendor):
    tokens.create_token(vendor.account, "first", creation_key="same-key")
    with pytest.raises(tokens.AlreadyCreated):
        tokens.create_token(vendor.account, "second", creation_key="same-key")
    assert len(entries("token.created")) == 1
    hook = make_webhook(vendor)
    with pytest.raises(secret_rotation.WebhookValidationError):
        secret_rotation.generate_next(hook, "\x00bad")
    assert entries("webhook.next_secret_generated") == []


def test_logins_failed_logins_and_logout(client, auth, vendor, other_vendor):
    assert auth.login(password="wrong-password").status_code == 200
    failed = only("user.login_failed")
    assert (failed.account_id, failed.object_label, failed.actor_user_id) == (
        vendor.account.id, "alice@acme.test", vendor.user.id)  # fmt: skip
    assert auth.login(email="nobody@nowhere.test", password="x" * 12).status_code == 200
    unknown = entries("user.login_failed")[-1]
    assert (unknown.account_id, unknown.object_label, unknown.actor_label) == (
        None, "nobody@nowhere.test", "nobody@nowhere.test")  # fmt: skip
    assert PASSWORD not in everything_stored() and "wrong-password" not in everything_stored()

    assert auth.login().status_code == 302
    logged_in = only("user.logged_in")
    assert (logged_in.actor_label, logged_in.object_id, logged_in.address) == (
        vendor.email, str(vendor.user.id), "127.0.0.1")  # fmt: skip
    assert auth.logout().status_code == 302
    assert only("user.logged_out").actor_user_id == vendor.user.id
    assert all(entry.account_id != other_vendor.account.id for entry in entries())


def test_a_mailed_alert_is_recorded_by_the_system(app, vendor, hook):
    app.config["MAIL_SERVER"] = ""  # logged instead of sent: still told
    row = db.session.get(Webhook, hook.id)
    row.out_of_order, row.failures_since_last_success = True, 10
    db.session.commit()
    assert alerts.send_alerts() == 1
    entry = only("alert.mailed")
    assert (entry.actor_kind, entry.actor_label, entry.object_id, entry.account_id) == (
        "system", "system", hook.id, vendor.account.id)  # fmt: skip
    assert entry.changes == {"out_of_order": {"after": True}, "recipients": {"after": [vendor.email]}}
