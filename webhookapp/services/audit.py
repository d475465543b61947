"""Recording the audit trail from the web side (docs/security.md, "Audit trail").

:func:`request_actor` says who acts in the current request: the API token that authenticated
it, else the signed-in user, else (the command line, a job) the system. The services call
:func:`record` before their own commit, so an entry is stored with its change or not at all;
:func:`note` records an action that changes nothing else (a secret revealed, a test request)
in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user

from webhookapp.infra.extensions import db
from webhookapp.models import Actor, ApiToken, User, Webhook
from webhookapp.models import audit as model
from webhookapp.services import accounts

CLI = model.CLI

WEBHOOK_FIELDS = (
    "label", "description", "active", "external_url", "http_method", "signature_format", "headers", "data",
    "jwt_secret", "tls_client_cert", "tls_client_key", "tls_ca_bundle",
)  # fmt: skip
"""The fields of a webhook an entry's changes compare: what a person or a token can set."""


def user_actor(user: User) -> Actor:
    """``user``, acting from the current request's address and browser."""
    address, agent = _client()
    return Actor(model.USER, user.email, user_id=user.id, address=address, user_agent=agent)


def token_actor(token: ApiToken) -> Actor:
    address, agent = _client()
    return Actor(
        model.TOKEN, Actor.token_label(token.name, token.prefix), token_id=token.id, address=address, user_agent=agent
    )


def request_actor() -> Actor:
    """Who acts now: the request's API token, else its signed-in user, else the command line."""
    if not has_request_context():
        return Actor.system(CLI)
    token = g.get("api_token")
    if isinstance(token, ApiToken):
        return token_actor(token)
    if current_user and current_user.is_authenticated:
        user: User = current_user._get_current_object()  # the proxy is untyped: it stands for a User
        return user_actor(user)
    address, agent = _client()
    return Actor(model.SYSTEM, model.SYSTEM, address=address, user_agent=agent)


def _client() -> tuple[str | None, str | None]:
    if not has_request_context():
        return None, None
    return request.remote_addr, request.user_agent.string or None


def record(
    action: str,
    *,
    account_id: str | None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    object_label: str | None = None,
    changes: Mapping[str, Mapping[str, Any]] | None = None,
    actor: Actor | None = None,
) -> model.AuditEntry:
    """Add an entry to the caller's transaction, the actor found from the request unless given."""
    return model.record(
        actor or request_actor(), action, account_id=account_id, object_type=object_type, object_id=object_id,
        object_label=object_label, changes=changes,
    )  # fmt: skip


def record_webhook(
    action: str, webhook: Webhook, changes: Mapping[str, Mapping[str, Any]] | None = None, actor: Actor | None = None
) -> model.AuditEntry:
    """:func:`record` about ``webhook``."""
    return record(
        action, account_id=webhook.account_id, object_type="webhook", object_id=webhook.id,
        object_label=webhook.label, changes=changes, actor=actor,
    )  # fmt: skip


def note_webhook(action: str, webhook: Webhook, changes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Record an action on ``webhook`` that changes nothing else, and commit it."""
    record_webhook(action, webhook, changes)
    db.session.commit()


def about_user(user: User) -> dict[str, Any]:
    """:func:`record`'s arguments for an entry about ``user`` (login, logout, password, 2FA)."""
    return {"account_id": user.account_id, "object_type": "user", "object_id": user.id, "object_label": user.email}


def note_failed_login(email: str) -> None:
    """A failed login, with the email tried: in the account of the user it names, if any (an
    unknown email's entry belongs to no account, for the operators)."""
    user = accounts.find_user(email)
    actor = _client()
    record(
        "user.login_failed",
        account_id=user.account_id if user else None,
        object_type="user",
        object_id=user.id if user else None,
        object_label=email,
        actor=Actor(model.USER, email, user_id=user.id if user else None, address=actor[0], user_agent=actor[1]),
    )
    db.session.commit()


def note(action: str, **details: Any) -> None:
    """Record an action that changes nothing else (:func:`record`'s arguments), and commit it."""
    record(action, **details)
    db.session.commit()


def webhook_values(webhook: Webhook) -> dict[str, Any]:
    """The comparable fields of ``webhook`` now, to diff after a change."""
    values = {name: getattr(webhook, name) for name in WEBHOOK_FIELDS}
    return {name: dict(value) if isinstance(value, dict) else value for name, value in values.items()}


def created_changes(webhook: Webhook) -> dict[str, Any]:
    """A new webhook's settings as ``{field: {"after": value}}``, the empty ones left out."""
    values = webhook_values(webhook)
    return {
        name: {"changed": True} if name in model.SECRET_FIELDS else {"after": value}
        for name, value in values.items()
        if value not in (None, "", {})
    }


def webhook_changes(before: Mapping[str, Any], webhook: Webhook) -> dict[str, Any]:
    """What changed in ``webhook`` since ``before`` (:func:`webhook_values`); secrets: changed."""
    return model.diff(before, webhook_values(webhook), WEBHOOK_FIELDS)
