"""Who may see what (docs/architecture.md, "Tenancy"): the token a request presents, and the
products an account may use.

Both the web side (``services``) and the delivery engine ask these questions, so they live
below both. Each rule is written once in Python and, where the event API's PostgreSQL statement
needs it inside SQL, once as SQL text right beside it.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, bindparam, select, true
from sqlalchemy.orm import joinedload

from webhookapp.core import rules, scopes
from webhookapp.core.errors import Unauthenticated
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Account, ApiToken, Product

LAST_USED_PRECISION = timedelta(minutes=1)  # a token's last use is noted at most once a minute


def digest(token: str) -> str:
    """The stored form of a token. Tokens carry 256 random bits, so a fast digest is as safe as a
    slow password hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def presented_digest(header: str | None) -> str | None:
    """The digest of the token an ``Authorization: ApiKey|Bearer <token>`` header presents, if any."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() not in ("apikey", "bearer") or not value.strip():
        return None
    return digest(value.strip())


@functools.cache
def _active_token_statement() -> Select[ApiToken]:
    """Built once: every API request runs it."""
    return (
        select(ApiToken)
        .where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None))
        .options(joinedload(ApiToken.account))
    )


def presented_token(header: str | None) -> ApiToken | None:
    """The unrevoked token an ``Authorization: ApiKey|Bearer <token>`` header presents, expired
    or not, whatever its scopes; nothing is noted."""
    presented = presented_digest(header)
    if presented is None:
        return None
    return db.session.scalar(_active_token_statement(), {"digest": presented})


def authorize(header: str | None, scope: str, address: str | None, *, also: tuple[str, ...] = ()) -> ApiToken:
    """The token an ``Authorization`` header presents, if it is unrevoked, unexpired and has
    ``scope`` (and every scope of ``also``); else :class:`.Unauthenticated` (none, or :class:`.scopes.TokenExpired`) or
    :class:`.scopes.InsufficientScope` (403).

    Notes the use (time and client ``address``) of an accepted token, to the minute. The event
    API's PostgreSQL statement checks and notes the same in SQL (``engine/ingest/postgresql.py``,
    :data:`USABLE_TOKEN_SQL`).
    """
    token = presented_token(header)
    if token is None:
        raise Unauthenticated
    now = utcnow()
    if token.expires_at is not None and token.expired(now):
        raise scopes.TokenExpired(token.expires_at)
    lacking = [name for name in (scope, *also) if not token.allows(name)]
    if lacking:
        raise scopes.InsufficientScope(*lacking)
    _note_use(token, now, address)
    return token


def authenticate_header(header: str | None, address: str | None = None) -> ApiToken | None:
    """The unrevoked, unexpired token an ``Authorization`` header presents, whatever its scopes,
    or None (for what no scope covers: the operators' metrics). Notes its use as :func:`authorize` does."""
    token = presented_token(header)
    now = utcnow()
    if token is None or token.expired(now):
        return None
    _note_use(token, now, address)
    return token


def _note_use(token: ApiToken, now: datetime, address: str | None) -> None:
    # Written at most once a minute: busy integrations should not pay a write per request.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        token.last_used_at = now
        token.last_used_address = address
        db.session.commit()


USABLE_TOKEN_SQL = (
    "t.token_hash = %(digest)s AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > %(now)s) AND "
    + scopes.SCOPE_SQL.format(column="t.scopes", pattern="%(scope)s")
)
""":func:`authorize` inside the event API's PostgreSQL statement, for the token ``t``: the
presented digest, unrevoked, unexpired at ``now``, with the scope whose :func:`.scopes.like_pattern`
is bound to ``scope``. ``tests/unit/test_trigger_twins.py`` checks that both accept alike."""


def usable_products_condition(account: Account, *, platform: bool = False) -> ColumnElement[bool]:
    """Products the account may use: a vendor's own; every product for a distributor or a
    platform token."""
    if account.is_vendor and not platform:
        return Product.vendor_id == account.id
    return true()


USABLE_PRODUCT_SQL = "(NOT token.vendor_only OR p.vendor_id = token.account_id)"
""":func:`usable_products_condition` inside the event API's PostgreSQL statement, where ``token``
has ``account_id`` and ``vendor_only`` (a vendor's non-platform token) and ``p`` is the product."""


def usable_products(account: Account) -> list[Product]:
    """Products the account may attach webhooks to, by name."""
    query = select(Product).where(usable_products_condition(account)).order_by(Product.name, Product.id)
    return list(db.session.scalars(query))


def usable_product(account: Account, product_id: str | None, *, platform: bool = False) -> Product | None:
    """The product with this id if the account (or a platform token of it) may use it, else None.
    An id no product could have (control characters, which PostgreSQL refuses to compare) names none."""
    if not product_id or not rules.is_plain(product_id):
        return None
    query = select(Product).where(Product.id == product_id, usable_products_condition(account, platform=platform))
    return db.session.scalar(query)
