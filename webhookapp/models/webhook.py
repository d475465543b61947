"""Webhooks, and the drafts of the creation wizard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, ForeignKey, Index, String, Text, event, false, text
from sqlalchemy import inspect as inspect_object
from sqlalchemy.orm import Mapped, Session, UOWTransaction, mapped_column, relationship

from webhookapp.core.catalog import WebhookType, by_pair
from webhookapp.core.rules import SECRET_MAX
from webhookapp.core.times import utcnow
from webhookapp.infra import crypto
from webhookapp.infra.extensions import Model
from webhookapp.models import secret_columns
from webhookapp.models.accounts import Account, Product
from webhookapp.models.columns import UTCDateTime

WEBHOOK_FILLFACTOR = 70
SECRET_COLUMN_LENGTH = crypto.ciphertext_length(SECRET_MAX)
DRAFT_SECRET = "jwt_secret"  # the draft's key for the typed secret; stored as ``jwt_secret_encrypted``
# Every typed value a draft keeps encrypted, each as ``<name>_encrypted``: the JWT secret and the
# client certificate's key (docs/security.md, "Secrets at rest").
DRAFT_SECRETS = (DRAFT_SECRET, "tls_client_key")


class Webhook(Model):
    """A configured webhook with its delivery statistics (docs/architecture.md, "Catalog and webhooks")."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=False)
    out_of_order: Mapped[bool] = mapped_column(default=False)
    object_class: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    http_method: Mapped[str] = mapped_column(String(8), default="POST")
    external_url: Mapped[str] = mapped_column(Text)
    # Stored encrypted (docs/security.md, "Secrets at rest"); read and written as ``jwt_secret``.
    jwt_secret_encrypted: Mapped[str] = mapped_column(String(SECRET_COLUMN_LENGTH))
    # Staged rotation (docs/architecture.md, "Secret rotation"): the secret that Switch makes
    # current; deliveries are signed with ``jwt_secret`` until then. Encrypted too.
    jwt_secret_next_encrypted: Mapped[str | None] = mapped_column(String(SECRET_COLUMN_LENGTH))
    # How deliveries are signed (docs/architecture.md, "Signature formats"): "jwt" or "standard"
    # (Standard Webhooks). While ``signature_switch_pending``, the current secret still belongs
    # to the other format and the next one to this: both are sent until Switch to next secret.
    signature_format: Mapped[str] = mapped_column(String(16), default="jwt", server_default="jwt")
    signature_switch_pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Mutual TLS (docs/handlers.md, "Client certificates"): the certificate (PEM, public) and its
    # key, stored encrypted and read as ``tls_client_key``; the CA bundle trusted for the handler.
    tls_client_cert: Mapped[str | None] = mapped_column(Text)
    tls_client_key_encrypted: Mapped[str | None] = mapped_column(Text)
    tls_ca_bundle: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Statistics, filled by the delivery engine; never pruned.
    events_count: Mapped[int] = mapped_column(default=0)
    # Of ``events_count``, those Trigger Now counted: it posts no event, so the Events tab lists
    # the others (docs/using.md, "Statistics, deliveries and Redeliver").
    trigger_now_count: Mapped[int] = mapped_column(default=0, server_default="0")
    triggers_count: Mapped[int] = mapped_column(default=0)
    success_count: Mapped[int] = mapped_column(default=0)
    failure_count: Mapped[int] = mapped_column(default=0)
    failures_since_last_success: Mapped[int] = mapped_column(default=0)
    # The attempts stored for this webhook now (pruning subtracts), so that the API reads a page
    # past the middle of a long list from its far end (docs/architecture.md, "Scale"). Written
    # in the same transaction as every insert and delete of its attempts; NULL until
    # ``flask attempts backfill-counts`` has counted a webhook made before migration 0027.
    attempts_kept: Mapped[int | None] = mapped_column(default=0, server_default="0")
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_trigger_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # {attempt_id, status, duration_ms, excerpt, error} of the last success / failure; kept when
    # the attempt itself is pruned.
    last_success_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_failure_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # Trigger state (docs/architecture.md, "Trigger state"), written by engine/triggers/ alone:
    # at most one pending trigger, due at ``next_trigger_at`` after ``trigger_attempts`` failed
    # attempts, and at most one attempt in flight, leased until ``lease_expires_at`` under ``lease_id``.
    trigger_attempts: Mapped[int] = mapped_column(default=0)
    last_event_api_url: Mapped[str | None] = mapped_column(Text)
    # The W3C trace context of the event that made the pending trigger due (docs/operations.md,
    # "Tracing"); NULL while tracing is off.
    trigger_traceparent: Mapped[str | None] = mapped_column(String(55))
    lease_id: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_attempt: Mapped[int] = mapped_column(default=0)
    # The due time the handler asked for in a Retry-After (docs/handlers.md, "What your answer
    # says about retrying"): the pending trigger's time was the handler's while it equals
    # ``next_trigger_at``; anything that moves the trigger (a claim, Retry now) breaks the match,
    # so nothing needs to clear it.
    retry_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the engine, not a person, disabled the webhook ("the handler answered 410 Gone");
    # cleared when it is enabled again.
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # The ``webhook-id`` of the current trigger: set by the claim of its first attempt, kept by
    # its retries, cleared when it succeeds or is given up (Out of order, disabled, 410 Gone).
    trigger_message_id: Mapped[str | None] = mapped_column(String(40))
    # How many triggers have ended as above: the claim names a trigger's message from it
    # (``msg_<id>_<serial>``), so a claim whose commit was lost names the same message again.
    trigger_serial: Mapped[int] = mapped_column(default=0, server_default="0")

    # Alerts (services/alerts.py): whether the account's users were told it is out of order; the
    # alert scan looks for rows where this differs from ``out_of_order``.
    alerted_out_of_order: Mapped[bool] = mapped_column(default=False, server_default=false())

    account: Mapped[Account] = relationship()
    product: Mapped[Product] = relationship()

    __table_args__ = (
        Index("ix_webhooks_match", "product_id", "object_class", "type", "active"),
        # An account's webhooks newest first: the list and the API page through this index alone.
        Index("ix_webhooks_account_created", "account_id", "created_at", "id"),
        # The products an account's webhooks use (the list's filter), read from this index alone.
        Index("ix_webhooks_account_product", "account_id", "product_id"),
        # The pending triggers in due order: a claim and the next due time read these rows alone,
        # however many webhooks there are (docs/architecture.md, "Trigger state").
        Index(
            "ix_webhooks_due",
            "next_trigger_at",
            "id",
            postgresql_where=text("next_trigger_at IS NOT NULL"),
            sqlite_where=text("next_trigger_at IS NOT NULL"),
        ),
        # Webhooks whose alert is due (out of order and not told, or told and no longer out of
        # order): a handful of rows, found without reading the table.
        Index(
            "ix_webhooks_alert_due",
            "id",
            postgresql_where=text("out_of_order <> alerted_out_of_order"),
            sqlite_where=text("out_of_order <> alerted_out_of_order"),
        ),
        # The enabled webhooks Out of order, counted for /metrics (a few rows; both columns are
        # already in other indexes' conditions, so the rows' updates stay HOT).
        Index(
            "ix_webhooks_out_of_order",
            "id",
            postgresql_where=text("out_of_order AND active"),
            sqlite_where=text("out_of_order AND active"),
        ),
        # Every event rewrites the rows it matches; room left on each page lets PostgreSQL update
        # them in place (HOT), without a new entry in every index (docs/architecture.md, "Scale").
        {"postgresql_with": {"fillfactor": WEBHOOK_FILLFACTOR}},
    )

    @property
    def jwt_secret(self) -> str:
        """The plain secret deliveries are signed with, decrypted (once per ciphertext and process)."""
        return secret_columns.webhook_secret(self.jwt_secret_encrypted, self.id)

    @jwt_secret.setter
    def jwt_secret(self, value: str) -> None:
        self.jwt_secret_encrypted = secret_columns.seal(value, table="webhooks", column="jwt_secret", row_id=self.id)

    @property
    def jwt_secret_next(self) -> str | None:
        """The plain next secret of a staged rotation, or None."""
        stored = self.jwt_secret_next_encrypted
        return None if stored is None else secret_columns.webhook_secret(stored, self.id, "jwt_secret_next")

    @jwt_secret_next.setter
    def jwt_secret_next(self, value: str | None) -> None:
        self.jwt_secret_next_encrypted = (
            None
            if value is None
            else secret_columns.seal(value, table="webhooks", column="jwt_secret_next", row_id=self.id)
        )

    @property
    def tls_client_key(self) -> str | None:
        """The client certificate's key (PEM), decrypted, or None."""
        stored = self.tls_client_key_encrypted
        return None if stored is None else secret_columns.webhook_secret(stored, self.id, "tls_client_key")

    @tls_client_key.setter
    def tls_client_key(self, value: str | None) -> None:
        self.tls_client_key_encrypted = (
            None if not value else secret_columns.seal(value, table="webhooks", column="tls_client_key", row_id=self.id)
        )

    @property
    def catalog_entry(self) -> WebhookType:
        entry = by_pair(self.object_class, self.type)
        if entry is None:  # pragma: no cover - rows are validated against the catalog
            raise LookupError(f"{self.object_class}/{self.type} is not in the catalog")
        return entry

    @property
    def posted_events_count(self) -> int:
        """Of ``events_count``, all but Trigger Now's: the events posted (a validation webhook's
        calls), which the Events tab lists while they are kept."""
        return self.events_count - self.trigger_now_count

    @property
    def failing(self) -> bool:
        """Enabled, and its trigger failed and is being retried (docs/architecture.md, "Trigger state")."""
        return self.active and not self.out_of_order and (self.trigger_attempts > 0 or self.lease_attempt > 1)

    @property
    def retryable(self) -> bool:
        """Failing or Out of order: there is a trigger for Retry now to send."""
        return self.failing or (self.active and self.out_of_order)

    @property
    def status(self) -> str:
        """Enabled, Failing, Out of order or Disabled, as the pages show it."""
        if not self.active:
            return "Disabled"
        if self.out_of_order:
            return "Out of order"
        return "Failing" if self.failing else "Enabled"

    @property
    def retry_asked(self) -> bool:
        """The pending retry falls due when the handler asked (its Retry-After), not by the schedule."""
        due = self.next_trigger_at
        return self.lease_id is None and due is not None and due == self.retry_asked_at

    @property
    def next_attempt(self) -> int:
        """The number of the next attempt of the pending (or running) trigger."""
        return self.lease_attempt if self.lease_id else self.trigger_attempts + 1

    def __repr__(self) -> str:
        return f"<Webhook {self.id}>"


class WizardDraft(Model):
    """What a person has typed so far in the creation wizard, kept server-side."""

    __tablename__ = "wizard_drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The typed values; the JWT secret among them is stored encrypted (read and written as ``data``).
    stored_data: Mapped[dict[str, Any]] = mapped_column("data", JSON, default=dict)
    completed: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def data(self) -> dict[str, Any]:
        """The typed values, the secret decrypted; a secret no key opens is left out (retyped)."""
        values = dict(self.stored_data or {})
        for name in DRAFT_SECRETS:
            stored = values.pop(f"{name}_encrypted", None)
            if stored is not None:
                try:
                    values[name] = secret_columns.unseal(stored, table="wizard_drafts", column=name, row_id=self.id)
                except crypto.CryptoError:
                    values.pop(name, None)
        return values

    @data.setter
    def data(self, values: dict[str, Any]) -> None:
        stored = dict(values)
        for name in DRAFT_SECRETS:
            secret = stored.pop(name, None)
            if secret:
                stored[f"{name}_encrypted"] = secret_columns.seal(
                    secret, table="wizard_drafts", column=name, row_id=self.id
                )
        self.stored_data = stored


class WebhookSearch(Model):
    """What the list's search box reads for a webhook: its name, id and endpoint URL in one text.

    Kept beside the webhook, not on it: events and deliveries rewrite webhook rows many times a
    second, and a trigram index on those rows would be written on every rewrite that cannot be
    made in place; this row changes only when the webhook's name or URL does
    (docs/architecture.md, "Scale"). Written by ``services/webhooks.py`` with the webhook.
    """

    __tablename__ = "webhook_search"

    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        # A part of a name, id or URL, found through trigrams on PostgreSQL rather than by reading
        # every webhook of the account.
        Index(
            "ix_webhook_search_text_trgm", "text", postgresql_using="gin", postgresql_ops={"text": "gin_trgm_ops"}
        ).ddl_if(dialect="postgresql"),
    )

    @staticmethod
    def text_of(webhook: Webhook) -> str:
        return f"{webhook.label} {webhook.id} {webhook.external_url}"


# The trigram operators of ix_webhook_search_text_trgm (pg_trgm is a trusted extension: the
# database's owner may create it).
event.listen(
    WebhookSearch.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


@event.listens_for(Session, "after_flush")
def _write_plain_copies(session: Session, _flush: UOWTransaction) -> None:
    """Between migrations 0011 and 0015 (docs/operations.md, "Upgrading"), the plain columns of
    the release before still exist and its workers sign with them: a webhook whose secrets were
    written here gets them there too, in the same transaction. Nothing is done once 0015 dropped
    them; the check costs a catalog query, paid only by a flush that wrote a secret."""
    changed = [
        item for item in (*session.new, *session.dirty)
        if isinstance(item, Webhook) and any(
            inspect_object(item).attrs[column].history.has_changes()
            for column in secret_columns.WEBHOOK_SECRETS.values()
        )
    ]  # fmt: skip
    if not changed:
        return
    connection = session.connection()
    if not secret_columns.has_plain_columns(connection):
        return
    connection.execute(
        text("UPDATE webhooks SET jwt_secret = :plain, jwt_secret_next = :next WHERE id = :id"),
        [{"id": item.id, "plain": item.jwt_secret, "next": item.jwt_secret_next} for item in changed],
    )
