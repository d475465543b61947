"""What a handler receives (docs/architecture.md, "Delivery contract"): the payload, its JWT or
its Standard Webhooks signature (docs/architecture.md, "Signature formats"), the request that
carries them, and the redacted copy we record.

:func:`build_call` is the one place a request to a handler is built and signed, for deliveries
and validation calls alike.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from flask import current_app
from jwt.warnings import InsecureKeyLengthWarning
from standardwebhooks.webhooks import Webhook as StandardWebhook

from webhookapp.core import rules
from webhookapp.core.times import isoformat
from webhookapp.engine.transport.client_tls import ClientTLS
from webhookapp.engine.types import PreparedCall, WebhookSnapshot
from webhookapp.models import secret_columns
from webhookapp.version import __version__

PAYLOAD_KEYS = (
    "webhook_id",
    "webhook_name",
    "object_class",
    "account_id",
    "product_id",
    "api_url",
    "triggered_at",
    "last_success_at",
    "last_failure_at",
    "processing_timeout",
    "data",
)


def build_payload(
    webhook: WebhookSnapshot, *, triggered_at: datetime, api_url: str, processing_timeout: float
) -> dict[str, Any]:
    """The POST body and the JWT claims (without ``exp``), exactly :data:`PAYLOAD_KEYS`."""
    timeout = int(processing_timeout) if float(processing_timeout).is_integer() else processing_timeout
    return {
        "webhook_id": webhook.id,
        "webhook_name": webhook.label,
        "object_class": webhook.object_class,
        "account_id": webhook.account_id,
        "product_id": webhook.product_id,
        "api_url": api_url,
        "triggered_at": isoformat(triggered_at),
        "last_success_at": isoformat(webhook.last_success_at),
        "last_failure_at": isoformat(webhook.last_failure_at),
        "processing_timeout": timeout,
        "data": webhook.data or {},
    }


def sign(payload: dict[str, Any], secret: str, *, triggered_at: datetime, processing_timeout: float) -> str:
    """An HS256 JWT of ``payload`` plus ``exp`` = ``triggered_at`` + ``processing_timeout``."""
    exp = int(triggered_at.replace(microsecond=0).timestamp() + processing_timeout)
    with warnings.catch_warnings():
        # The secret is the webhook owner's choice (Connect accepts short ones); the wizard
        # suggests 256 bits, and a short secret is no reason to stop deliveries.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode({**payload, "exp": exp}, secret, algorithm="HS256", headers={"typ": "JWT"})


REDACTED = "REDACTED"


def new_standard_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes (the HMAC key)."""
    return rules.STANDARD_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    """A ``webhook-id`` for a message that is sent once (a redelivery, a validation, a test)."""
    return f"msg_{secrets.token_hex(16)}"


def sign_standard(message_id: str, timestamp: datetime, body: bytes, keys: list[str]) -> dict[str, str]:
    """The Standard Webhooks headers of one message, signed by the specification's own library
    with each of ``keys`` (``whsec_`` secrets): more than one signature, space separated, during a
    staged rotation, so that a handler knowing either secret verifies."""
    text = body.decode()
    signatures = " ".join(StandardWebhook(key).sign(message_id, timestamp, text) for key in keys)
    stamp = int(timestamp.replace(tzinfo=UTC).timestamp())
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp), "webhook-signature": signatures}


def redact_standard(signatures: str) -> str:
    """``webhook-signature`` fit for the attempt log: each signature's version kept, its value not."""
    return " ".join(f"{item.partition(',')[0]},{REDACTED}" for item in signatures.split(" "))


def redact(token: str) -> str:
    """The JWT with its signature replaced, fit for the attempt log: header and claims stay readable."""
    header, _, rest = token.partition(".")
    claims, _, _signature = rest.partition(".")
    return f"{header}.{claims}.{REDACTED}"


@dataclass(frozen=True)
class DecodedJwt:
    """A recorded JWT's header and claims, read without checking the signature (which is redacted)."""

    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def expires_at(self) -> datetime | None:
        """``exp`` as a UTC time, or None when it is missing or not a time."""
        exp = self.claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return None
        try:
            return datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            return None


def _segment(text: str) -> dict[str, Any] | None:
    """One base64url JSON segment of a JWT as an object, or None for anything else."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        value = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def decode_logged(headers: dict[str, str] | None) -> DecodedJwt | None:
    """The JWT of a recorded request's ``Authorization: Bearer`` header (the attempt page shows
    what the handler got), or None when there is none or it cannot be read. Nothing is verified:
    the recorded copy's signature is :func:`redact`-ed."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "authorization"), None)
    scheme, _, token = (value or "").partition(" ")
    parts = token.strip().split(".")
    if scheme != "Bearer" or len(parts) != 3:
        return None
    header, claims = _segment(parts[0]), _segment(parts[1])
    if header is None or claims is None:
        return None
    return DecodedJwt(header, claims)


def secret_of(webhook: WebhookSnapshot) -> str:
    """The plain JWT secret of a snapshot. The key ring caches it by ciphertext, so a worker pays
    one AES-GCM decryption per webhook and secret, not per delivery; a secret no key opens raises
    :class:`webhookapp.infra.crypto.CryptoError`, which fails that attempt alone."""
    return secret_columns.webhook_secret(webhook.jwt_secret_encrypted, webhook.id)


def client_tls_of(webhook: WebhookSnapshot) -> ClientTLS | None:
    """The client certificate a snapshot presents to https:// handlers, its key decrypted (cached
    by ciphertext, as the JWT secret), and the CA bundle it trusts; None without either."""
    cert = webhook.tls_client_cert if webhook.tls_client_key_encrypted else None
    if not cert and not webhook.tls_ca_bundle:
        return None
    key = (
        secret_columns.webhook_secret(webhook.tls_client_key_encrypted, webhook.id, "tls_client_key") if cert else None
    )
    return ClientTLS(webhook.id, cert, key, webhook.tls_ca_bundle or None)


def _keys(webhook: WebhookSnapshot, typed: str | None) -> tuple[str | None, list[str]]:
    """The secret the JWT is signed with (None: no JWT) and those of ``webhook-signature``.

    A standard webhook signs with its current secret and, during a staged rotation, its next one
    too. While a change of format waits for Switch to next secret, the current secret still
    signs in the old format and the next one in the new, so the handler may check either.
    ``typed`` (Send test request's) replaces the stored secrets.
    """
    standard = webhook.signature_format == "standard"
    if typed:
        return (None, [typed]) if standard else (typed, [])
    current = secret_of(webhook)
    stored_next = webhook.jwt_secret_next_encrypted
    following = (
        None if stored_next is None else secret_columns.webhook_secret(stored_next, webhook.id, "jwt_secret_next")
    )
    if webhook.signature_switch_pending and following is not None:
        return (current, [following]) if standard else (following, [current])
    if standard:
        return None, [current] + ([following] if following else [])
    return current, []


def build_call(
    webhook: WebhookSnapshot,
    *,
    triggered_at: datetime,
    api_url: str | None,
    method: str | None = None,
    body: dict[str, Any] | None = None,
    secret: str | None = None,
    client_tls: ClientTLS | None = None,
    message_id: str | None = None,
) -> PreparedCall:
    """The signed request of one attempt.

    The JWT carries the payload (``api_url`` falls back to ``WEBHOOK_API_URL``); a POST's body is
    the payload too, unless ``body`` (a validation's request object) is given. ``method``
    defaults to the webhook's; ``secret`` and ``client_tls`` (typed ones, for Send test request)
    replace the stored ones. A standard webhook's request carries the Standard Webhooks headers
    instead of the JWT (both while a change of format is staged), ``message_id`` (a trigger's) its
    ``webhook-id``, a new one when None. Custom headers go first, then ours, which they cannot override.
    """
    config = current_app.config
    timeout = float(config["WEBHOOK_PROCESSING_TIMEOUT"])
    payload = build_payload(
        webhook, triggered_at=triggered_at, api_url=api_url or config["WEBHOOK_API_URL"], processing_timeout=timeout
    )
    jwt_key, standard_keys = _keys(webhook, secret)
    method = method or webhook.http_method
    ours = {"User-Agent": f"webhookapp/{__version__}"}
    redacted: dict[str, str] = {}
    if jwt_key is not None:
        token = sign(payload, jwt_key, triggered_at=triggered_at, processing_timeout=timeout)
        ours["Authorization"] = f"Bearer {token}"
        redacted["Authorization"] = f"Bearer {redact(token)}"
    encoded = None
    if method == "POST":
        ours["Content-Type"] = "application/json"
        encoded = json.dumps(payload if body is None else body, separators=(",", ":")).encode()
    if standard_keys:
        signed = sign_standard(message_id or new_message_id(), triggered_at, encoded or b"", standard_keys)
        ours.update(signed)
        redacted["webhook-signature"] = redact_standard(signed["webhook-signature"])
    # Header names are case-insensitive: a custom header named like one of ours, in any case,
    # is dropped, so that what is recorded is exactly what is sent.
    taken = {name.lower() for name in (*ours, "Authorization")}
    headers = {name: value for name, value in dict(webhook.headers).items() if name.lower() not in taken}
    headers.update(ours)
    logged = {**headers, **redacted}
    return PreparedCall(
        method=method, url=webhook.external_url, headers=headers, body=encoded, logged_headers=logged,
        client_tls=client_tls or client_tls_of(webhook),
    )  # fmt: skip
