"""Reading the audit trail: the Activity page, the webhook's Activity tab and the API
(docs/security.md, "Audit trail"). An account reads its own entries only.

Every list is newest first and paged by key (:func:`.paging.keyset_page`), each filter an
index range read (``ix_audit_account_*``), so a page costs the same at any depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, and_, select

from webhookapp.core.times import aware_utc
from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import Account, ApiToken, AuditEntry, User, audit

ACTIONS = audit.ACTIONS
NEWEST_FIRST = (AuditEntry.at.desc(), AuditEntry.id.desc())
ID_MAX = audit.OBJECT_ID_MAX


@dataclass(frozen=True)
class Filters:
    """What a list is narrowed to; empty values mean any."""

    object_id: str = ""
    actor: str = ""
    action: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def active(self) -> bool:
        return bool(self.object_id or self.actor or self.action or self.since or self.until)


def parse_time(text: str | None, *, end_of_day: bool = False) -> datetime | None:
    """A date or date and time as a form sends it (taken as UTC); None when empty or unreadable.
    A date alone as an upper bound means the whole of that day."""
    text = (text or "").strip()[:40]
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if end_of_day and len(text) <= len("2026-12-06") and moment.time() == time():
        moment += timedelta(days=1) - timedelta(microseconds=1)
    return aware_utc(moment)


def visible(account_id: str) -> ColumnElement[bool]:
    """The entries an account may read: its own."""
    return AuditEntry.account_id == account_id


def query(account: Account, filters: Filters) -> Select[AuditEntry]:
    """The account's entries narrowed by ``filters`` (unordered)."""
    conditions = [visible(account.id)]
    if filters.object_id:
        conditions.append(AuditEntry.object_id == filters.object_id[:ID_MAX])
    if filters.actor:
        conditions.append(AuditEntry.actor_label == filters.actor[: audit.LABEL_MAX])
    if filters.action:
        conditions.append(AuditEntry.action == filters.action)
    if filters.since:
        conditions.append(AuditEntry.at >= filters.since)
    if filters.until:
        conditions.append(AuditEntry.at <= filters.until)
    return select(AuditEntry).where(and_(*conditions))


def entries_page(
    account: Account,
    filters: Filters,
    *,
    per_page: int,
    before: str | None = None,
    after: str | None = None,
    oldest: bool = False,
    first: int | None = None,
) -> paging.KeysetPage:
    """A keyset page of the account's entries, newest first (the Deliveries tab's paging)."""
    return paging.keyset_page(
        query(account, filters), AuditEntry.at, AuditEntry.id, per_page=per_page, before=before, after=after,
        oldest=oldest, first=first,
    )  # fmt: skip


def get_entry(account: Account, entry_id: int) -> AuditEntry | None:
    """The account's entry with this id; None for another account's."""
    return db.session.scalar(select(AuditEntry).where(AuditEntry.id == entry_id, visible(account.id)))


def actor_choices(account: Account) -> list[str]:
    """The actors the Activity page offers to filter by: the account's users and tokens (as their
    entries name them) and the system. Read from those tables, not from the entries: cheap at any size."""
    emails = db.session.scalars(select(User.email).where(User.account_id == account.id).order_by(User.email))
    tokens = db.session.execute(
        select(ApiToken.name, ApiToken.prefix).where(ApiToken.account_id == account.id).order_by(ApiToken.name)
    )
    return [*emails, *(audit.Actor.token_label(name, prefix) for name, prefix in tokens), audit.CLI, audit.SYSTEM]
