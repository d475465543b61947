"""API tokens: shown once at creation, stored as a SHA-256 digest, revocable."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Account, ApiToken, utcnow

TOKEN_PREFIX = "whk_"
NAME_MAX = 100
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenError(Exception):
    """A token request that cannot be carried out; the message says why."""


class AlreadyCreated(TokenError):
    """The same create form was submitted again; its token exists and cannot be shown again."""


def _digest(token: str) -> str:
    # Tokens carry 256 random bits, so a fast digest is as safe as a slow password hash.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    account: Account, name: str, *, platform: bool = False, creation_key: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plain token, which is never stored.

    ``creation_key`` (from the create form) makes a resubmission raise :class:`AlreadyCreated`.
    """
    if creation_key and db.session.scalar(select(ApiToken.id).where(ApiToken.creation_key == creation_key)):
        raise AlreadyCreated("This token was already created; its value was shown once and cannot be shown again.")
    name = name.strip()
    if not name:
        raise TokenError("Token name is required.")
    if len(name) > NAME_MAX:
        raise TokenError(f"Token name must be at most {NAME_MAX} characters.")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        account_id=account.id,
        name=name,
        token_hash=_digest(plain),
        prefix=plain[: len(TOKEN_PREFIX) + 6],
        is_platform=platform,
        creation_key=creation_key or None,
    )
    db.session.add(token)
    try:
        db.session.commit()
    except IntegrityError:  # the same form, submitted twice at once
        db.session.rollback()
        raise AlreadyCreated(
            "This token was already created; its value was shown once and cannot be shown again."
        ) from None
    return token, plain


def list_tokens(account: Account) -> list[ApiToken]:
    """The account's tokens, active first, newest first."""
    query = (
        select(ApiToken)
        .where(ApiToken.account_id == account.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(db.session.scalars(query))


def get_token(account: Account, token_id: int) -> ApiToken | None:
    """The account's token with this id; None for another account's."""
    return db.session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.account_id == account.id))


def revoke_token(token: ApiToken) -> None:
    """Revoke a token at once; it stays listed as revoked."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()


def presented_digest(header: str | None) -> str | None:
    """The digest of the token an ``Authorization: ApiKey|Bearer <token>`` header presents, if any."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() not in ("apikey", "bearer") or not value.strip():
        return None
    return _digest(value.strip())


@functools.cache
def _active_token_statement() -> Select:
    """Built once: every API request runs it."""
    return (
        select(ApiToken)
        .where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None))
        .options(joinedload(ApiToken.account))
    )


def authenticate_header(header: str | None) -> ApiToken | None:
    """The active token named by an ``Authorization: ApiKey|Bearer <token>`` header, or None.

    Marks the token as used now (to the minute).
    """
    digest = presented_digest(header)
    if digest is None:
        return None
    token = db.session.scalar(_active_token_statement(), {"digest": digest})
    now = utcnow()
    # Written at most once a minute: busy integrations should not pay a write per request.
    if token is not None and (token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION):
        token.last_used_at = now
        db.session.commit()
    return token
