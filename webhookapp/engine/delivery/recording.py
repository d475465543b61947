"""What the delivery loop does with outcomes (docs/architecture.md, "Reliability"): record each
one once, whatever the handler answered and whatever the database does meanwhile.

Successes go in one batch (:func:`.outcomes.complete_successes`), failures one by one with
their retry. A batch the database refuses as a whole is recorded item by item, so one odd
outcome cannot keep the others unrecorded; an item it still refuses is recorded without what
the handler sent. Outcomes the database could not take because it was unreachable are handed
back to the caller to try again; they are never dropped while the job runs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, outcomes
from webhookapp.engine.reconnect import close_session, retrying, unreachable
from webhookapp.engine.timing import LINGER, RECONNECT_PAUSE, RECORD_PATIENCE
from webhookapp.engine.types import AttemptResult, Claim, Finished, PreparedCall
from webhookapp.infra import metrics
from webhookapp.infra.extensions import app_object, db

log = logging.getLogger(__name__)


def record(finished: list[Finished]) -> list[Finished]:
    """Record outcomes; returns those the database could not take because it was unreachable.

    Each outcome is logged once, when it is recorded (a failure with its attempt's id)."""
    kept: list[Finished] = []
    for batch in _one_per_webhook([item for item in finished if item.result.success]):
        kept.extend(_record_successes(batch))
    kept.extend(item for item in finished if not item.result.success and not _record_one(item))
    return kept


def _one_per_webhook(successes: list[Finished]) -> list[list[Finished]]:
    """Batches of successes of distinct webhooks, as :func:`.outcomes.complete_successes` takes
    them. A webhook has two only when a success kept while the database was away meets one of
    the trigger sent again after its claim was lost (a failover): each is counted."""
    batches: list[list[Finished]] = []
    seen: Counter[str] = Counter()
    for item in successes:
        order = seen[item.claim.webhook.id]  # a webhook's n-th success goes in the n-th batch
        seen[item.claim.webhook.id] += 1
        if order == len(batches):
            batches.append([])
        batches[order].append(item)
    return batches


def _record_successes(successes: list[Finished]) -> list[Finished]:
    """Record a batch of successes of distinct webhooks; returns those kept for later."""
    try:
        ids = retrying(lambda: outcomes.complete_successes(successes))
    except SQLAlchemyError as exc:
        db.session.rollback()
        if unreachable(exc):
            log.warning("Could not reach the database to record %d successes; keeping them.", len(successes))
            return list(successes)
        log.exception("Could not record a batch of %d successes; recording them one by one", len(successes))
        return [item for item in successes if not _record_one(item)]
    for claim, call, result in successes:
        _recorded(claim, call, result, ids.get(claim.webhook.id))
    return []


REFUSED, UNREACHABLE = "refused", "unreachable"


def _complete(item: Finished) -> outcomes.Completed | str:
    """:func:`.outcomes.complete`, else :data:`REFUSED` or :data:`UNREACHABLE`."""
    try:
        return retrying(lambda: outcomes.complete(item.claim, item.call, item.result))
    except SQLAlchemyError as exc:
        db.session.rollback()
        if unreachable(exc):
            return UNREACHABLE
        log.exception("The database refused the attempt of %s", item.claim.webhook.id, extra=_ids(item.claim))
        return REFUSED


def _record_one(item: Finished) -> bool:
    """Record one outcome (without the response, if the database refuses it whole) and schedule
    its retry; False if the database was unreachable."""
    claim, result = item.claim, item.result
    completed = _complete(item)
    if completed == REFUSED:
        note = "[The response could not be stored.]"
        completed = _complete(item._replace(result=dataclasses.replace(result, headers={}, body=note, truncated=False)))
    if completed == UNREACHABLE:
        return False
    if isinstance(completed, outcomes.Completed):
        _recorded(claim, item.call, result, completed.attempt_id)
        retry_at = completed.retry_at
        if retry_at is not None and (retry_at - utcnow()).total_seconds() > LINGER:
            dispatch.schedule(claim.webhook.id, retry_at)
    return True  # recorded; or refused even so, and its lease expires: a repeat, not a loss


def record_patiently(finished: list[Finished], patience: float = RECORD_PATIENCE) -> None:
    """Record outcomes, trying again while the database is unreachable, for up to ``patience``
    seconds; what is still unrecorded then is left to the leases (logged)."""
    deadline = time.monotonic() + patience
    pause = RECONNECT_PAUSE
    while finished:
        finished = record(finished)
        if finished and time.monotonic() + pause > deadline:
            log.error("Gave up recording %d outcomes: their triggers will be sent again.", len(finished))
            return
        if finished:
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def recorder() -> Callable[[list[Finished]], None]:
    """Records outcomes from a send thread after the job has handed over, in an app context of its own."""
    app = app_object()

    def record_in_app(finished: list[Finished]) -> None:
        with app.app_context():
            try:
                record_patiently(finished)
            finally:
                close_session()

    return record_in_app


def _ids(claim: Claim, attempt_id: int | None = None) -> dict[str, object]:
    """The ids a log line about this attempt carries (``logs.JsonFormatter``)."""
    return {"webhook_id": claim.webhook.id, "attempt": claim.attempt, "attempt_id": attempt_id}


def _recorded(claim: Claim, call: PreparedCall, result: AttemptResult, attempt_id: int | None) -> None:
    """Count and log an outcome once it is recorded: the count then matches the statistics; its
    spans end, with the attempt's id."""
    metrics.delivery_recorded(result.success, result.duration_ms)
    if call.trace is not None:
        call.trace.recorded(attempt_id)
    if not result.success:  # the technical detail too: the log is for operators
        detail = f" [{result.error_detail}]" if result.error_detail else ""
        log.info("%s attempt %d failed in %.0f ms: %s%s", claim.webhook.id, claim.attempt, result.duration_ms,
                 result.error, detail, extra=_ids(claim, attempt_id))  # fmt: skip
    elif log.isEnabledFor(logging.DEBUG):  # the hot path builds nothing for a line nobody reads
        log.debug("%s attempt %d: HTTP %s in %.0f ms", claim.webhook.id, claim.attempt, result.status,
                  result.duration_ms, extra=_ids(claim, attempt_id))  # fmt: skip
