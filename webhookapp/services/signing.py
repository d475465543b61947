"""What a handler receives (DESIGN §5): the payload, its JWT, and the redacted copy we log."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

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


def isoformat(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``+00:00`` and whole seconds, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class WebhookSnapshot:
    """The webhook's settings and previous outcomes as they were when the attempt was claimed."""

    id: str
    label: str
    object_class: str
    account_id: str
    product_id: str
    http_method: str
    external_url: str
    jwt_secret: str
    headers: dict[str, str]
    data: dict[str, Any]
    last_success_at: datetime | None
    last_failure_at: datetime | None


def build_payload(
    webhook: WebhookSnapshot, *, triggered_at: datetime, api_url: str, processing_timeout: float
) -> dict[str, Any]:
    """The POST body and the JWT claims (without ``exp``), exactly the keys of DESIGN §5."""
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


def redact(token: str) -> str:
    """The JWT with its signature replaced, fit for the attempt log: header and claims stay readable."""
    header, _, rest = token.partition(".")
    claims, _, _signature = rest.partition(".")
    return f"{header}.{claims}.REDACTED"
