"""Accounts, their people, their products and their API tokens."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from webhookapp.core import scopes
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import Model
from webhookapp.models.columns import UTCDateTime

VENDOR = "vendor"
DISTRIBUTOR = "distributor"


class Account(Model):
    """A vendor (``VA-…``) or a distributor (``PA-…``)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by an admin: every user of the account logs in with a second factor (docs/security.md,
    # "Two-factor login"); one without it enrols right after the password step.
    require_two_factor: Mapped[bool] = mapped_column(default=False, server_default=false())

    users: Mapped[list[User]] = relationship(back_populates="account")

    @property
    def is_vendor(self) -> bool:
        return self.kind == VENDOR

    def __repr__(self) -> str:
        return f"<Account {self.id}>"


class User(UserMixin, Model):
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
    # Two-factor login: the TOTP seed, encrypted (context "users.totp_secret:<id>"); None when off.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    # The last TOTP time step accepted: a code of that step or an earlier one is refused (replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    account: Mapped[Account] = relationship(back_populates="users")

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_secret is not None

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


class RecoveryCode(Model):
    """A one-time code that stands in for a TOTP code (a lost phone); only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Product(Model):
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


class ApiToken(Model):
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
    last_used_address: Mapped[str | None] = mapped_column(String(45))  # the client address, with last_used_at
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Space-separated, in core.scopes' order (core.scopes.normalized); a token made before scopes has them all.
    scopes: Mapped[str] = mapped_column(String(scopes.SCOPES_MAX), default=" ".join(scopes.ALL_SCOPES))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: until revoked

    account: Mapped[Account] = relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def scope_names(self) -> list[str]:
        return self.scopes.split()

    def allows(self, scope: str) -> bool:
        """Whether the token has ``scope`` (docs/security.md, "Scoped and expiring API tokens")."""
        return scopes.allows(self.scopes, scope)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the token is past its expiry at ``now`` (default: now)."""
        return self.expires_at is not None and self.expires_at <= (now or utcnow())
