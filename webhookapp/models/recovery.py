"""Recoveries: a webhook's failed triggers of a time range, sent once more in the background
(docs/architecture.md, "Recover")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import Model
from webhookapp.models.columns import UTCDateTime

RUNNING, CANCELLED, FINISHED = "running", "cancelled", "finished"
STATES = (RUNNING, CANCELLED, FINISHED)


class Recovery(Model):
    """One recovery of a webhook: its range, its progress and who runs it now.

    The workers send it a slice at a time (:mod:`webhookapp.engine.recovery`). ``cursor_*`` is the
    last attempt looked at, in ``(started_at, id)`` order, committed with each request sent, so
    that a recovery whose worker died resumes after it. ``generation`` names the job allowed to
    run the next slice: a job takes it by moving it on, so a duplicate job (or a lost one's
    replacement) finds it gone and does nothing. ``lease_until`` is when the sweeper may assume the
    slice running, or the job queued for the next one, lost.

    ``webhook_id`` has no foreign key, as attempts: a deleted webhook's recovery stops by itself.
    """

    __tablename__ = "recoveries"
    __table_args__ = (
        # At most one running recovery per webhook: the database refuses a second one.
        Index(
            "uq_recoveries_running_webhook",
            "webhook_id",
            unique=True,
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        # A webhook's recoveries newest first (the Deliveries tab shows the newest).
        Index("ix_recoveries_webhook_id", "webhook_id", "id"),
        # The running ones whose lease ran out: the sweeper reads a handful of rows.
        Index(
            "ix_recoveries_running_lease",
            "lease_until",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    webhook_id: Mapped[str] = mapped_column(String(20))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), default=RUNNING)
    total: Mapped[int] = mapped_column(default=0)  # failed triggers in the range at the start
    sent: Mapped[int] = mapped_column(default=0)
    succeeded: Mapped[int] = mapped_column(default=0)
    cursor_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cursor_attempt_id: Mapped[int] = mapped_column(default=0)
    generation: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)  # why it stopped early, when it did
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def percent(self) -> int:
        """How far it is, for the progress bar: sent of total (a total that grew is capped)."""
        if self.state == FINISHED or not self.total:
            return 100 if self.state == FINISHED else 0
        return min(100, int(100 * self.sent / self.total))
