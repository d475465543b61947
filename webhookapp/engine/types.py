"""The engine's data types, from the claim to the recorded outcome (docs/architecture.md,
"Data flow"). The column lists that read and write them are derived from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from webhookapp.engine.tracing import DeliveryTrace
    from webhookapp.engine.transport.client_tls import ClientTLS

EXCERPT_CHARS = 300  # of a response body, kept with the statistics after the attempt is pruned


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
    jwt_secret_encrypted: str | None  # as stored: decrypted when signing (:func:`.signing.secret_of`)
    headers: dict[str, str]
    data: dict[str, Any]
    last_success_at: datetime | None
    last_failure_at: datetime | None
    # Mutual TLS: the certificate, its key as stored (decrypted when signing) and the CA bundle.
    tls_client_cert: str | None = None
    tls_client_key_encrypted: str | None = field(default=None, repr=False)
    tls_ca_bundle: str | None = None
    signature_format: str = "jwt"
    signature_switch_pending: bool = False
    jwt_secret_next_encrypted: str | None = None  # a staged rotation's: a standard webhook signs with both


SNAPSHOT_COLUMNS: tuple[str, ...] = tuple(item.name for item in fields(WebhookSnapshot))
"""The webhook columns a claim reads: the snapshot's fields, by name."""


def snapshot(row: Any) -> WebhookSnapshot:
    """The snapshot of a webhook, from its model object or from a row with its columns."""
    values = {name: getattr(row, name) for name in SNAPSHOT_COLUMNS}
    # Otherwise taken as stored: a row that cannot be signed fails its own attempt later, not the claim.
    values["headers"] = values["headers"] or {}
    values["data"] = values["data"] or {}
    return WebhookSnapshot(**values)


@dataclass(frozen=True)
class Claim:
    """An attempt this process may make: the lease it holds and what to send."""

    webhook: WebhookSnapshot
    lease_id: str
    attempt: int
    api_url: str | None
    claimed_at: datetime
    traceparent: str | None = None  # of the event that made the trigger due, while tracing is on
    message_id: str | None = None  # the trigger's ``webhook-id``, the same on each of its attempts


@dataclass
class PreparedCall:
    """Everything needed to make one attempt."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    logged_headers: dict[str, str]  # as recorded: the JWT's and webhook-signature's signatures redacted
    trace: DeliveryTrace | None = None  # its spans, while tracing is on
    client_tls: ClientTLS | None = None  # what an https:// handler is shown, if the webhook has a certificate


@dataclass
class AttemptResult:
    """What came of one attempt; success is a 2xx answer read in full within the timeout."""

    started_at: datetime
    duration_ms: float
    success: bool
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    truncated: bool = False
    error: str | None = None  # one short sentence, shown wherever the failure is
    error_detail: str | None = None  # the exception's own text, shown on the attempt's page

    @property
    def excerpt(self) -> str:
        return (self.body or "")[:EXCERPT_CHARS]


class CountedEvent(NamedTuple):
    """The webhooks an event was counted on (``matched``), and those whose trigger it made due
    (``fresh``): the others had one pending already, whose maker wakes the workers."""

    matched: list[str]
    fresh: list[str]


class Prepared(NamedTuple):
    """A claimed attempt, signed and ready to send."""

    claim: Claim
    call: PreparedCall


class Finished(NamedTuple):
    """A sent attempt with its outcome, ready to record."""

    claim: Claim
    call: PreparedCall
    result: AttemptResult


@dataclass(frozen=True)
class Success:
    """A recorded successful attempt, as its webhook's row takes it (:func:`.triggers.succeed`):
    counted, and its lease released if still held."""

    webhook_id: str
    lease_id: str
    started_at: datetime
    summary: dict[str, Any]  # the last-success summary (``outcomes.summary``), which outlives the attempt
