"""A handler calling back (docs/architecture.md, "Following events"): the JWT of a delivery as a
credential for reading that webhook's events, and nothing else.

A handler is rung, not told (the webhook is a doorbell): it asks ``GET {api_url}events`` what
changed, with the ``Authorization: Bearer <JWT>`` it was just sent, until the JWT's ``exp``.
The JWT names its webhook (``webhook_id``) and is signed with the webhook's secret, so the
signature proves the caller received a delivery of that webhook; it opens that webhook's
events alone, and every other endpoint refuses it.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import jwt
from jwt.warnings import InsecureKeyLengthWarning
from sqlalchemy import select

from webhookapp.core.errors import Unauthenticated
from webhookapp.core.times import isoformat
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

ALGORITHMS = ["HS256"]  # what signing.sign uses; "none" and every other algorithm are refused
REFUSED = "The delivery JWT is not valid: its signature, algorithm or claims do not check out."
ONLY_EVENTS = "A delivery JWT may only read its webhook's events (GET /public/v1/events); use an API token."


def presented_jwt(header: str | None) -> str | None:
    """The JWT of an ``Authorization: Bearer <JWT>`` header, or None for anything else (an API
    token never holds a dot, a JWT always two)."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or value.count(".") != 2:
        return None
    return value


def delivery_webhook(token: str) -> Webhook:
    """The webhook whose delivery JWT ``token`` is, once its signature and ``exp`` check out
    with that webhook's secret; :class:`Unauthenticated` with the reason otherwise."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})  # only to find the secret
    except jwt.InvalidTokenError:
        raise Unauthenticated(REFUSED) from None
    webhook_id = claims.get("webhook_id")
    webhook = (
        db.session.scalar(select(Webhook).where(Webhook.id == webhook_id)) if isinstance(webhook_id, str) else None
    )
    if webhook is None:
        raise Unauthenticated(REFUSED)
    try:
        with warnings.catch_warnings():
            # Short secrets are the webhook owner's choice, as when signing (engine/signing.py).
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            verified = jwt.decode(token, webhook.jwt_secret, algorithms=ALGORITHMS, options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        expired = datetime.fromtimestamp(int(claims["exp"]), UTC)
        raise Unauthenticated(
            f"The delivery JWT expired at {isoformat(expired)}: a handler may call back until its exp "
            "(triggered_at + processing_timeout)."
        ) from None
    except jwt.InvalidTokenError:
        raise Unauthenticated(REFUSED) from None
    if verified.get("webhook_id") != webhook.id:  # pragma: no cover - the signed claims are those read
        raise Unauthenticated(REFUSED)
    return webhook
