"""Each webhook's count of stored attempts (``webhooks.attempts_kept``), so that the API can read
a page past the middle of a long list from its far end instead of stepping over the rows before
it (docs/architecture.md, "Scale").

The count is exact within every transaction: whatever inserts an attempt raises it in the same
transaction (the engine's recording statements, :func:`.outcomes.record_attempt`,
:func:`.outcomes.record_redelivery`), and pruning lowers it (:func:`subtract`). A webhook made
before migration 0027 has NULL until :func:`backfill` counts it; a NULL count is never read, so
its pages are read from the near end, as before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from sqlalchemy import bindparam, func, select, update

from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Attempt, Webhook

BATCH_SIZE = 500
"""Webhooks counted per backfill transaction."""

_TABLE = Webhook.__table__


def subtract(webhook_ids: Iterable[str]) -> None:
    """Take deleted attempts (one webhook id per attempt) off their webhooks' counts, in the
    caller's transaction; rows are locked in id order, as every multi-row writer of webhooks does."""
    removed = Counter(webhook_ids)
    if not removed:
        return
    statement = (
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("webhook"))
        .values(attempts_kept=_TABLE.c.attempts_kept - bindparam("removed"))
    )
    rows = [{"webhook": webhook_id, "removed": removed[webhook_id]} for webhook_id in sorted(removed)]
    db.session.execute(statement, rows)


def backfill(
    batch_size: int = BATCH_SIZE, progress: Callable[[str], None] | None = None, *, recount: bool = False
) -> int:
    """Count the attempts of every webhook whose count is not known yet (of every webhook with
    ``recount``: after a rolling upgrade, whose old processes stored attempts without counting
    them), ``batch_size`` webhooks per transaction in id order; returns the webhooks counted.
    Safe beside the service, and resumable: a webhook counted is not counted again, but by a
    ``recount``.

    Each batch locks its webhooks first (``FOR UPDATE``, in id order), then counts in a second
    statement, whose snapshot sees every attempt committed before the locks were taken; a writer
    that stores or deletes an attempt later changes the count after this one (it needs the
    row's lock), so nothing is counted twice or missed. On SQLite the counting statement holds
    the write lock."""
    counted, after = 0, ""
    while True:
        pending = select(Webhook.id).where(Webhook.id > after).order_by(Webhook.id)
        if not recount:
            pending = pending.where(Webhook.attempts_kept.is_(None))
        if on_postgresql():
            pending = pending.with_for_update()
        ids = list(db.session.scalars(pending.limit(batch_size)))
        if ids:
            stored = (
                select(func.count())
                .select_from(Attempt.__table__)
                .where(Attempt.__table__.c.webhook_id == _TABLE.c.id)
                .correlate(_TABLE)
                .scalar_subquery()
            )
            db.session.execute(update(_TABLE).where(_TABLE.c.id.in_(ids)).values(attempts_kept=stored))
        db.session.commit()
        counted += len(ids)
        if progress is not None and ids:
            progress(f"{ids[-1]}: {counted} webhooks counted")
        if len(ids) < batch_size:
            return counted
        after = ids[-1]
