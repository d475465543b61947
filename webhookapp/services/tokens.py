"""API tokens: shown once at creation, stored as a SHA-256 digest, revocable."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webhookapp.core import rules
from webhookapp.core.errors import ServiceError
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Account, Actor, ApiToken, tenancy
from webhookapp.services import audit

TOKEN_PREFIX = "whk_"
NAME_MAX = 100


class TokenError(ServiceError):
    """A token request that cannot be carried out; the message says why."""

    def __init__(self, message: str):
        super().__init__(400, "TOK_001", message)


class AlreadyCreated(TokenError):
    """The same create form was submitted again; its token exists and cannot be shown again."""


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
    if not rules.is_plain(name):
        raise TokenError("Token name may not contain control characters.")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        account_id=account.id,
        name=name,
        token_hash=tenancy.digest(plain),
        prefix=plain[: len(TOKEN_PREFIX) + 6],
        is_platform=platform,
        creation_key=creation_key or None,
    )
    db.session.add(token)
    try:
        db.session.flush()  # the entry names the token's id
        _record("token.created", token)
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
        _record("token.revoked", token)
        db.session.commit()


def _record(action: str, token: ApiToken) -> None:
    audit.record(
        action, account_id=token.account_id, object_type="token", object_id=token.id,
        object_label=Actor.token_label(token.name, token.prefix),
    )  # fmt: skip
