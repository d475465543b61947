"""Who may see what (docs/architecture.md, "Tenancy"): the token a request presents, and the
products an account may use.

Both the web side (``services``) and the delivery engine ask these questions, so they live
below both. Each rule is written once in Python and, where the event API's PostgreSQL statement
needs it inside SQL, once as SQL text right beside it.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import timedelta

from sqlalchemy import ColumnElement, Select, bindparam, select, true
from sqlalchemy.orm import joinedload

from webhookapp.core import rules
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


def authenticate_header(header: str | None) -> ApiToken | None:
    """The active token named by an ``Authorization: ApiKey|Bearer <token>`` header, or None.

    Marks the token as used now (to the minute). The event API's PostgreSQL statement does the
    same in SQL (``engine/ingest/postgresql.py``).
    """
    presented = presented_digest(header)
    if presented is None:
        return None
    token = db.session.scalar(_active_token_statement(), {"digest": presented})
    now = utcnow()
    # Written at most once a minute: busy integrations should not pay a write per request.
    if token is not None and (token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION):
        token.last_used_at = now
        db.session.commit()
    return token


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
