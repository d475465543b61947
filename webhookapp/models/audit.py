"""The audit trail (docs/security.md, "Audit trail"): who changed what, when, from where.

An entry is added by :func:`record` to the session of the change it describes, so the service
that commits the change commits its entry too: both are stored or neither is. The actor is
always given by the caller (a web request's user or token, the command line, the system), so the
engine may record as well as the services. Entries are never changed or deleted, except by the
retention prune (``WEBHOOK_AUDIT_RETENTION_DAYS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import Model, db
from webhookapp.models.columns import UTCDateTime

USER, TOKEN, SYSTEM = "user", "token", "system"
ACTOR_KINDS = (USER, TOKEN, SYSTEM)
CLI = "cli"
"""The system actor's label for the ``flask`` commands."""

ACTIONS = (
    "webhook.created",
    "webhook.updated",
    "webhook.enabled",
    "webhook.disabled",
    "webhook.deleted",
    "webhook.triggered",
    "webhook.retried",
    "webhook.redelivered",
    "webhook.recovery_started",
    "webhook.recovery_cancelled",
    "webhook.secret_revealed",
    "webhook.next_secret_generated",
    "webhook.secret_switched",
    "webhook.next_secret_discarded",
    "webhook.test_request_sent",
    "token.created",
    "token.revoked",
    "user.logged_in",
    "user.login_failed",
    "user.logged_out",
    "user.password_changed",
    "user.two_factor_enrolled",
    "user.two_factor_removed",
    "account.updated",
    "alert.mailed",
)
"""Every action an entry may name; :func:`record` refuses any other."""

SECRET_FIELDS = frozenset({"jwt_secret", "jwt_secret_next", "tls_client_key", "tls_client_cert", "tls_ca_bundle"})
"""Fields whose values never reach an entry: a change to one is recorded as ``{"changed": true}``
(a reveal as ``{"revealed": true}``). The certificate and CA bundle are public, but pages of PEM
say nothing a person reads in an entry."""
SECRET_FLAGS = ("changed", "revealed")

LABEL_MAX = 200
ADDRESS_MAX = 64
USER_AGENT_MAX = 300
OBJECT_ID_MAX = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def clean(text: str | None, limit: int) -> str | None:
    """``text`` without control characters (and lone surrogates), cut to ``limit``: what a client
    sends as its user agent must not break a page, a log line or a column."""
    if text is None:
        return None
    return _CONTROL.sub("", text)[:limit]


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (by email), a token (by name and prefix) or the system, and from where."""

    kind: str
    label: str
    user_id: int | None = None
    token_id: int | None = None
    address: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls, label: str = SYSTEM) -> Actor:
        return cls(SYSTEM, label)

    @staticmethod
    def token_label(name: str, prefix: str) -> str:
        return f"{name} ({prefix}…)"


class AuditEntry(Model):
    """One recorded action. ``account_id`` is None only for a failed login with an unknown email."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        # The Activity page and the API: an account's entries newest first, and narrowed by
        # object, action or actor, each an index range read at any depth.
        Index("ix_audit_account_at", "account_id", "at", "id"),
        Index("ix_audit_account_object", "account_id", "object_id", "at", "id"),
        Index("ix_audit_account_action", "account_id", "action", "at", "id"),
        Index("ix_audit_account_actor", "account_id", "actor_label", "at", "id"),
        # An action by one actor: with the two indexes above alone, a common pair (a user's updates)
        # is found by filtering one range row by row, and its count, bounded at 10,000, read a
        # sixth of a large account's entries (100 ms p95 in bench.scale).
        Index("ix_audit_account_action_actor", "account_id", "action", "actor_label", "at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)  # the prune reads by time
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_label: Mapped[str] = mapped_column(String(LABEL_MAX))
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_token_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str | None] = mapped_column(String(20))
    object_id: Mapped[str | None] = mapped_column(String(OBJECT_ID_MAX))
    object_label: Mapped[str | None] = mapped_column(String(LABEL_MAX))
    address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def record(
    actor: Actor,
    action: str,
    *,
    account_id: str | None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    object_label: str | None = None,
    changes: Mapping[str, Mapping[str, Any]] | None = None,
) -> AuditEntry:
    """Add an entry to the current transaction (uncommitted: the caller's commit stores it with
    the change). ``changes`` maps a field to ``{"before": …, "after": …}``; secret fields are
    reduced to ``{"changed": true}`` whatever the caller passed."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if actor.kind not in ACTOR_KINDS:
        raise ValueError(f"unknown actor kind {actor.kind!r}")
    entry = AuditEntry(
        account_id=account_id,
        at=utcnow(),
        actor_kind=actor.kind,
        actor_label=clean(actor.label, LABEL_MAX) or actor.kind,
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        action=action,
        object_type=object_type,
        object_id=clean(None if object_id is None else str(object_id), OBJECT_ID_MAX),
        object_label=clean(object_label, LABEL_MAX),
        address=clean(actor.address, ADDRESS_MAX),
        user_agent=clean(actor.user_agent, USER_AGENT_MAX),
        changes=_redacted(changes) if changes else None,
    )
    db.session.add(entry)
    return entry


def _redacted(changes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``changes`` with every secret field reduced to its flags (changed, revealed), never a value."""
    return {name: _flags(change) if name in SECRET_FIELDS else dict(change) for name, change in changes.items()}


def _flags(change: Mapping[str, Any]) -> dict[str, bool]:
    return {flag: True for flag in SECRET_FLAGS if change.get(flag) is True} or {"changed": True}


def diff(before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """``{field: {"before", "after"}}`` for the ``fields`` whose values differ (secrets: changed)."""
    return {
        name: {"changed": True} if name in SECRET_FIELDS else {"before": before.get(name), "after": after.get(name)}
        for name in fields
        if before.get(name) != after.get(name)
    }
