"""What must hold after each fault, read from the fleet's database once every trigger is done."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tests.fleet.load import Load, Received, SinkLog
from tests.fleet.sink import digest
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Event, Webhook


@dataclass
class Hook:
    id: str
    product_id: str
    path: str


def unfinished() -> int:
    pending = (Webhook.next_trigger_at.is_not(None)) | (Webhook.lease_id.is_not(None))
    try:
        db.session.rollback()  # read what the fleet committed since
        return db.session.scalar(select(func.count()).select_from(Webhook).where(pending)) or 0
    except OperationalError:  # this connection died with a PostgreSQL server: ask again on a new one
        db.session().invalidate()  # no rollback on the dead connection
        return -1


def wait_settled(timeout: float = 90.0) -> float:
    """Seconds until no trigger is pending or in flight."""
    started = time.monotonic()
    while unfinished():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{unfinished()} triggers still unfinished after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def problems(hooks: list[Hook], load: Load, sink: SinkLog, probes: Counter[str]) -> list[str]:
    """Every way the state disagrees with what was posted and answered (empty: all is well)."""
    db.session.rollback()
    found = [f"the event API answered {text}" for text in load.wrong]
    sent_ok = sink.successes()
    stored = {hook.id: hook for hook in db.session.scalars(select(Webhook))}
    attempts = Counter()
    successes = Counter()
    last_success: dict[str, datetime] = {}
    rows = db.session.execute(
        select(Attempt.webhook_id, Attempt.success, Attempt.started_at).where(Attempt.kind == "trigger")
    )
    for webhook_id, success, started_at in rows:
        attempts[webhook_id] += 1
        if success:
            successes[webhook_id] += 1
            last_success[webhook_id] = max(last_success.get(webhook_id, started_at), started_at)
    last_event = dict(
        db.session.execute(select(Event.product_id, func.max(Event.created_at)).group_by(Event.product_id)).all()
    )
    events = db.session.scalar(select(func.count()).select_from(Event))
    if events != load.total + probes.total():
        found.append(f"{events} events stored, {load.total + probes.total()} accepted")
    for hook in hooks:
        row = stored[hook.id]
        posted = load.accepted[hook.product_id] + probes[hook.product_id]
        if row.events_count != posted:
            found.append(f"{hook.path}: {row.events_count} events counted, {posted} accepted")
        if not row.triggers_count == row.success_count + row.failure_count == attempts[hook.id]:
            found.append(f"{hook.path}: triggers {row.triggers_count}, successes {row.success_count}, failures "
                         f"{row.failure_count}, attempts recorded {attempts[hook.id]}")  # fmt: skip
        if row.success_count != successes[hook.id]:
            found.append(f"{hook.path}: {row.success_count} successes counted, {successes[hook.id]} recorded")
        if row.success_count > sent_ok[hook.path]:
            found.append(
                f"{hook.path}: {row.success_count} successes counted, the handler answered {sent_ok[hook.path]}"
            )
        if row.out_of_order or row.next_trigger_at or row.lease_id:
            found.append(f"{hook.path}: trigger not finished (out of order {row.out_of_order})")
        if (
            hook.product_id in last_event
            and last_success.get(hook.id, datetime.min.replace(tzinfo=UTC)) < last_event[hook.product_id]
        ):
            found.append(f"{hook.path}: its last event was never delivered")
    return found


UNRECORDED = "sent, no attempt recorded (its lease ran out)"


@dataclass
class Resends:
    """Why triggers were sent again: the handlers' planned failures (the status the sink chose, by
    status), and what the faults caused (by reason): an answer that never came back (a cut, a
    reset, a timeout), and a request the handler received that no attempt records, so that its
    trigger was sent again once the lease ran out (a worker cut off or unable to record)."""

    handlers: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)


def resends(since: datetime, received: list[Received]) -> Resends:
    """The attempts started since ``since`` matched with the requests the sink ``received``
    meanwhile, by path and body (each attempt's ``triggered_at`` is its claim's)."""
    db.session.rollback()
    answered: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for entry in received:
        answered[entry.path, entry.digest].append(entry.status)
    rows = db.session.execute(
        select(Attempt.request_url, Attempt.request_body, Attempt.success, Attempt.response_status, Attempt.error)
        .where(Attempt.started_at >= since, Attempt.kind == "trigger")
    )  # fmt: skip
    found = Resends()
    for url, body, success, status, error in rows:
        statuses = answered[urlsplit(url).path, digest((body or "").encode())]
        chosen = status is not None and status in statuses
        if chosen:
            statuses.remove(status)
        elif status is None and statuses:  # the handler answered; the answer never came back
            statuses.pop(0)
        if success:
            continue
        if chosen:
            found.handlers[str(status)] += 1
        elif status is not None:  # a status the handler never sent: something between
            found.faults[f"HTTP {status} not from the handler"] += 1
        else:
            found.faults[error or "no answer"] += 1
    if unrecorded := sum(len(statuses) for statuses in answered.values()):
        found.faults[UNRECORDED] += unrecorded
    return found
