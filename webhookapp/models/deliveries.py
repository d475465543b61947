"""Events, attempts, and the bookkeeping of pruning and purging."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from webhookapp.core.ids import attempt_reference
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import Model
from webhookapp.models.columns import UTCDateTime


class Event(Model):
    """A queue-change event accepted by ``POST /public/v1/events``."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("account_id", "client_event_id", name="uq_events_account_client_id"),
        # The list's search box finds a webhook by an event's object id.
        Index("ix_events_object_id", "object_id"),
        # The events an account posted, newest first: one half of its feed (:class:`EventFeed`).
        Index("ix_events_account_created", "account_id", "created_at", "id"),
        # The events of a set of webhooks matched together, newest first: a webhook's events are
        # the ranges of its sets (:class:`MatchSet`).
        Index("ix_events_match_set_created", "match_set_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    client_event_id: Mapped[str | None] = mapped_column(String(100))
    object_class: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str | None] = mapped_column(String(100))
    api_url: Mapped[str | None] = mapped_column(Text)
    webhook_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The set of webhook_ids (:class:`MatchSet`); NULL for an event that matched none.
    match_set_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The W3C trace context of the API call that stored it, linked from the delivery that
    # carries it (docs/operations.md, "Tracing"); NULL while tracing is off.
    traceparent: Mapped[str | None] = mapped_column(String(55))


class Attempt(Model):
    """One HTTP call to a handler: the request as sent (JWT signature redacted) and the outcome.

    ``webhook_id`` has no foreign key: a deleted webhook's attempts are removed in the background
    (:class:`DeletedWebhook`), so that deleting does not wait for its whole history. Every writer
    of attempts checks under a lock that the webhook still exists (docs/architecture.md, "Scale").
    """

    __tablename__ = "attempts"
    __table_args__ = (
        # A webhook's attempts newest first. The included columns are those the API filters on,
        # so a page at any offset, and its count, read this index alone.
        Index(
            "ix_attempts_webhook_started_id", "webhook_id", "started_at", "id", postgresql_include=["success", "kind"]
        ),
        # Its failures alone: few among many successes, found without reading the successes.
        Index(
            "ix_attempts_webhook_failures",
            "webhook_id",
            "started_at",
            "id",
            postgresql_where=text("NOT success"),
            sqlite_where=text("NOT success"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="trigger")  # trigger or validation
    number: Mapped[int] = mapped_column(default=1)  # attempt number within its trigger
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    success: Mapped[bool] = mapped_column(default=False)
    request_method: Mapped[str] = mapped_column(String(8))
    request_url: Mapped[str] = mapped_column(Text)
    request_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    request_body: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_truncated: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)  # one short sentence
    # What the transport's exception said, for those who want it (the attempt's page alone).
    error_detail: Mapped[str | None] = mapped_column(Text)
    # The attempt this one sent again (Redeliver): it counted no event and moved no retry.
    redelivery_of: Mapped[int | None] = mapped_column(Integer)

    @property
    def outcome(self) -> str:
        return "Success" if self.success else "Failure"

    @property
    def reference(self) -> str:
        """``AT-000-123``: the id as a person quotes it (pages, API, tickets)."""
        return attempt_reference(self.id)

    @property
    def original_reference(self) -> str | None:
        """The reference of the attempt this one sent again, for a redelivery; else None."""
        return None if self.redelivery_of is None else attempt_reference(self.redelivery_of)


class AttemptHour(Model):
    """A webhook's attempts in one whole hour, summed up once that hour is over: the details
    page's chart reads these rather than every attempt (docs/architecture.md, "Scale").

    ``duration_buckets`` counts the attempts per duration bucket (bounds in the module that fills
    it), so medians and percentiles of any span add up from hours.
    """

    __tablename__ = "attempt_hours"

    webhook_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    successes: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    duration_buckets: Mapped[list[int]] = mapped_column(JSON, default=list)


class DeletedWebhook(Model):
    """A deleted webhook whose attempts are still being removed, in batches, by the workers."""

    __tablename__ = "deleted_webhooks"

    webhook_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MaintenanceLease(Model):
    """Who runs a maintenance task (pruning) now, until when: one worker at a time, and a worker
    that dies lets another take over once its lease expires."""

    __tablename__ = "maintenance_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EventFeed(Model):
    """An event that matched a webhook of an account other than the one that posted it (an event
    posted with a platform token), newest first by account: the other half of the events an
    account may see (docs/architecture.md, "Following events").

    Written by the statement that stores the event; the poster's own events are read through
    ``ix_events_account_created`` instead, so an event posted for one's own webhooks writes none.
    The primary key is the only index: an account's range, newest first."""

    __tablename__ = "event_feeds"

    account_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(20), primary_key=True)


class MatchSet(Model):
    """A set of webhooks that events matched together, named by the MD5 digest of their sorted
    ids: an event notes its set (``events.match_set_id``), so that a webhook's events are the
    ranges of ``ix_events_match_set_created`` of the few sets it belongs to
    (docs/architecture.md, "Following events"). Made by the first event that matches a new set;
    never changed."""

    __tablename__ = "match_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(32), unique=True)


class MatchSetWebhook(Model):
    """A webhook of a :class:`MatchSet`: a webhook's sets are a range of the primary key."""

    __tablename__ = "match_set_webhooks"

    webhook_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    set_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Backfill(Model):
    """How far a backfill that runs beside the service has come (``position``: the last row
    done, as a :func:`.paging.cursor`), so that it resumes there; ``done`` once it reached the end."""

    __tablename__ = "backfills"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[str | None] = mapped_column(String(80))
    done: Mapped[bool] = mapped_column(default=False)
