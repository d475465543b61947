"""Database models in SQLAlchemy 2 typed style.

Every webhook, token and (later) delivery belongs to exactly one account; queries that serve a
person or a token always filter by that account.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .catalog import WebhookType, by_pair
from .extensions import db
from .times import utcnow

VENDOR = "vendor"
WEBHOOK_FILLFACTOR = 70
DISTRIBUTOR = "distributor"


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Account(db.Model):
    """A vendor (``VA-…``) or a distributor (``PA-…``)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="account")

    @property
    def is_vendor(self) -> bool:
        return self.kind == VENDOR

    def __repr__(self) -> str:
        return f"<Account {self.id}>"


class User(UserMixin, db.Model):
    """A person who logs in with email and password; belongs to one account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every session and remember cookie of the user (get_id); a new one ends them all.
    session_token: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))

    account: Mapped[Account] = relationship(back_populates="users")

    def get_id(self) -> str:
        """What Flask-Login keeps in the session and the remember cookie: the id and the session token."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """Make every session and remember cookie of this user invalid (logout, a new password)."""
        self.session_token = secrets.token_hex(16)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])
        if self.session_token is not None:
            self.end_sessions()  # a new password signs out every device that knew the old one

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Product(db.Model):
    """What a webhook watches; owned by a vendor, usable by that vendor and every distributor."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    vendor_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    dynamic_validation: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    vendor: Mapped[Account] = relationship()

    @property
    def capabilities(self) -> set[str]:
        return {"dynamic_validation"} if self.dynamic_validation else set()

    def __repr__(self) -> str:
        return f"<Product {self.id}>"


class ApiToken(db.Model):
    """An account's API token; only a SHA-256 digest of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    is_platform: Mapped[bool] = mapped_column(default=False)
    # The create form's one-time key: a resubmitted form (reload, double click) makes no second token.
    creation_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Webhook(db.Model):
    """A configured webhook with its delivery statistics (docs/architecture.md, "Catalog and webhooks")."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=False)
    out_of_order: Mapped[bool] = mapped_column(default=False)
    object_class: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    http_method: Mapped[str] = mapped_column(String(8), default="POST")
    external_url: Mapped[str] = mapped_column(Text)
    jwt_secret: Mapped[str] = mapped_column(String(100))
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Statistics, filled by the delivery engine; never pruned.
    events_count: Mapped[int] = mapped_column(default=0)
    triggers_count: Mapped[int] = mapped_column(default=0)
    success_count: Mapped[int] = mapped_column(default=0)
    failure_count: Mapped[int] = mapped_column(default=0)
    failures_since_last_success: Mapped[int] = mapped_column(default=0)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_trigger_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # {attempt_id, status, duration_ms, excerpt, error} of the last success / failure; kept when
    # the attempt itself is pruned.
    last_success_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_failure_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # Trigger state (docs/architecture.md, "Trigger state"), written by engine/triggers.py alone:
    # at most one pending trigger, due at ``next_trigger_at`` after ``trigger_attempts`` failed
    # attempts, and at most one attempt in flight, leased until ``lease_expires_at`` under ``lease_id``.
    trigger_attempts: Mapped[int] = mapped_column(default=0)
    last_event_api_url: Mapped[str | None] = mapped_column(Text)
    lease_id: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_attempt: Mapped[int] = mapped_column(default=0)

    account: Mapped[Account] = relationship()
    product: Mapped[Product] = relationship()

    __table_args__ = (
        Index("ix_webhooks_match", "product_id", "object_class", "type", "active"),
        # An account's webhooks newest first: the list and the API page through this index alone.
        Index("ix_webhooks_account_created", "account_id", "created_at", "id"),
        # The pending triggers in due order: a claim and the next due time read these rows alone,
        # however many webhooks there are (docs/architecture.md, "Trigger state").
        Index(
            "ix_webhooks_due",
            "next_trigger_at",
            "id",
            postgresql_where=text("next_trigger_at IS NOT NULL"),
            sqlite_where=text("next_trigger_at IS NOT NULL"),
        ),
        # Every event rewrites the rows it matches; room left on each page lets PostgreSQL update
        # them in place (HOT), without a new entry in every index (docs/architecture.md, "Scale").
        {"postgresql_with": {"fillfactor": WEBHOOK_FILLFACTOR}},
    )

    @property
    def catalog_entry(self) -> WebhookType:
        entry = by_pair(self.object_class, self.type)
        if entry is None:  # pragma: no cover - rows are validated against the catalog
            raise LookupError(f"{self.object_class}/{self.type} is not in the catalog")
        return entry

    @property
    def status(self) -> str:
        """Enabled, Disabled or Out of order, as the pages show it."""
        if not self.active:
            return "Disabled"
        return "Out of order" if self.out_of_order else "Enabled"

    def __repr__(self) -> str:
        return f"<Webhook {self.id}>"


class WizardDraft(db.Model):
    """What a person has typed so far in the creation wizard, kept server-side."""

    __tablename__ = "wizard_drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    completed: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(db.Model):
    """A queue-change event accepted by ``POST /public/v1/events``."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("account_id", "client_event_id", name="uq_events_account_client_id"),)

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    client_event_id: Mapped[str | None] = mapped_column(String(100))
    object_class: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str | None] = mapped_column(String(100))
    api_url: Mapped[str | None] = mapped_column(Text)
    webhook_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Attempt(db.Model):
    """One HTTP call to a handler: the request as sent (JWT signature redacted) and the outcome.

    ``webhook_id`` has no foreign key: a deleted webhook's attempts are removed in the background
    (:class:`DeletedWebhook`), so that deleting does not wait for its whole history. Every writer
    of attempts checks under a lock that the webhook still exists (docs/architecture.md, "Scale").
    """

    __tablename__ = "attempts"
    __table_args__ = (
        # A webhook's attempts newest first. The included columns are those the API filters on,
        # so a page at any offset, and its count, read this index alone.
        Index(
            "ix_attempts_webhook_started_id", "webhook_id", "started_at", "id", postgresql_include=["success", "kind"]
        ),
        # Its failures alone: few among many successes, found without reading the successes.
        Index(
            "ix_attempts_webhook_failures",
            "webhook_id",
            "started_at",
            "id",
            postgresql_where=text("NOT success"),
            sqlite_where=text("NOT success"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="trigger")  # trigger or validation
    number: Mapped[int] = mapped_column(default=1)  # attempt number within its trigger
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    success: Mapped[bool] = mapped_column(default=False)
    request_method: Mapped[str] = mapped_column(String(8))
    request_url: Mapped[str] = mapped_column(Text)
    request_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    request_body: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_truncated: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def outcome(self) -> str:
        return "Success" if self.success else "Failure"


class DeletedWebhook(db.Model):
    """A deleted webhook whose attempts are still being removed, in batches, by the workers."""

    __tablename__ = "deleted_webhooks"

    webhook_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MaintenanceLease(db.Model):
    """Who runs a maintenance task (pruning) now, until when: one worker at a time, and a worker
    that dies lets another take over once its lease expires."""

    __tablename__ = "maintenance_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
