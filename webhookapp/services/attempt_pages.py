"""An ``offset`` page of a webhook's attempts past the middle of the list, read from its far end
(docs/architecture.md, "Scale").

Newest first, the page at ``offset`` is, oldest first, the page at ``count - offset - limit``:
with the webhook's stored count (``webhooks.attempts_kept``, :mod:`webhookapp.engine.attempt_counts`)
the last page of 100,000 attempts costs what the first does, instead of a walk over the 99,900
index entries before it. The count is read in the same statement as the page, so both come from
one snapshot, and the page's total is exact.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, literal, select

from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


def past_the_middle(webhook: Webhook, offset: int, limit: int) -> tuple[list[Attempt], int] | None:
    """The attempts of ``webhook`` at ``offset`` (newest first), and their total, when the page
    lies past the middle of the list; None when it does not, when the webhook's count is not
    known yet, or when the page is past the end (the caller reads it the usual way)."""
    kept = webhook.attempts_kept
    if kept is None or limit <= 0 or offset * 2 < kept or offset >= kept:
        return None
    found = db.session.execute(far_end_keys(webhook.id, offset, limit)).all()
    if not found:
        return None
    total: int = found[0][1]
    return paging.rows_by_keys(Attempt.id, [row.id for row in reversed(found)]), total


def far_end_keys(webhook_id: str, offset: int, limit: int) -> Select[Any]:
    """The ids of the page at ``offset`` (newest first) read oldest first, each with the count
    they were found by: one statement, so that both come from one snapshot."""
    count = select(Webhook.attempts_kept).where(Webhook.id == webhook_id).scalar_subquery()
    after_page = count - offset - limit  # rows older than the page
    skip = case((after_page > 0, after_page), else_=literal(0))
    take = case((count - offset >= limit, literal(limit)), (count - offset > 0, count - offset), else_=literal(0))
    return (
        select(Attempt.id, count.label("count"))
        .where(Attempt.webhook_id == webhook_id)
        .order_by(Attempt.started_at, Attempt.id)
        .offset(skip)
        .limit(take)
    )
