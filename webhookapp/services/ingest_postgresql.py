"""Event ingest on PostgreSQL (DESIGN §7, §6): the event API's hot path, one statement per event.

:data:`STATEMENT` does for one event all that :func:`.events.ingest` does elsewhere with several:
it checks the token (and notes its use, to the minute), locks the matching webhooks in id order,
inserts the event unless its client id is already known or the product is not the token's to
see, and counts the event on the webhooks only if the event row went in.

Events for the same product contend for the same webhook rows, so a process commits them in
groups (:class:`GroupCommit`): the first request runs its statement at once; requests that
arrive meanwhile are sent together, in one pipelined round trip and one transaction, as soon as
it is done. A lone event waits for nothing, and a busy product pays one commit (and one wait
for the disk) per group instead of one per event. A group holds one product only, so its row
locks are taken in id order, as everywhere else.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from ..extensions import db
from ..models import VENDOR
from . import dispatch

STATEMENT = """
    WITH token AS (
        SELECT t.id, t.account_id, t.is_platform, a.kind = %(vendor)s AND NOT t.is_platform AS vendor_only
        FROM api_tokens t JOIN accounts a ON a.id = t.account_id
        WHERE t.token_hash = %(digest)s AND t.revoked_at IS NULL
    ),
    used AS (
        UPDATE api_tokens SET last_used_at = %(now)s
        WHERE id = (SELECT id FROM token) AND (last_used_at IS NULL OR last_used_at < %(used_before)s)
    ),
    matched AS MATERIALIZED (
        SELECT w.id FROM webhooks w, token
        WHERE w.product_id = %(product_id)s AND w.object_class = %(object_class)s AND w.type = 'event'
          AND w.active AND (token.is_platform OR w.account_id = token.account_id)
        ORDER BY w.id
        FOR UPDATE OF w
    ),
    known AS (
        SELECT EXISTS (SELECT 1 FROM matched) OR EXISTS (
            SELECT 1 FROM products p, token
            WHERE p.id = %(product_id)s AND (NOT token.vendor_only OR p.vendor_id = token.account_id)
        ) AS found
    ),
    stored AS (
        INSERT INTO events
            (id, account_id, client_event_id, object_class, product_id, object_id, api_url, webhook_ids, created_at)
        SELECT %(event_id)s, token.account_id, %(client_id)s, %(object_class)s, %(product_id)s, %(object_id)s,
               %(api_url)s, COALESCE((SELECT json_agg(id ORDER BY id) FROM matched), '[]'::json), %(now)s
        FROM token, known WHERE known.found
        ON CONFLICT (account_id, client_event_id) DO NOTHING
        RETURNING webhook_ids
    ),
    counted AS (
        UPDATE webhooks
        SET events_count = events_count + 1, last_event_at = %(now)s,
            -- Doorbell: a pending trigger absorbs the event; otherwise one is due now.
            next_trigger_at = COALESCE(next_trigger_at, %(now)s), last_event_api_url = %(api_url)s
        WHERE id IN (SELECT id FROM matched) AND EXISTS (SELECT 1 FROM stored)
        -- The trigger is the event's own (it was not pending before), so somebody must be woken.
        RETURNING id, next_trigger_at = %(now)s AND NOT out_of_order AS fresh
    )
    SELECT token.account_id, (SELECT found FROM known) AS found, (SELECT webhook_ids FROM stored) AS webhook_ids,
           (SELECT json_agg(id) FROM counted WHERE fresh) AS fresh_ids
    FROM (SELECT 1) AS one LEFT JOIN token ON true
"""


Key = tuple[Engine, str]


@dataclass(frozen=True)
class Outcome:
    """What the statement did: whose token it was (None: no valid token), whether the product
    was found, the matched webhooks (None: the client id was already known), and those whose
    trigger the event made due (the others' pending trigger absorbed it: nobody need be woken)."""

    account_id: str | None
    found: bool
    webhook_ids: list[str] | None
    fresh_ids: list[str] = field(default_factory=list)


@dataclass
class _Waiting:
    """One event in a group: its parameters, then its outcome or the group's error."""

    params: dict[str, Any]
    wake: bool
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None

    def result(self) -> Outcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


class GroupCommit:
    """Runs the statements of one product's concurrent events in groups, one transaction each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[Key, list[_Waiting]] = {}  # events not yet sent
        self._busy: set[Key] = set()  # (database, product) pairs with a group in flight

    def store(self, engine: Engine, params: dict[str, Any], wake: bool) -> Outcome:
        product = (engine, params["product_id"])
        me = _Waiting(params, wake)
        with self._lock:
            self._waiting.setdefault(product, []).append(me)
            me.leads = product not in self._busy
            self._busy.add(product)
        if not me.leads:
            me.ready.wait()  # for the outcome, or to lead the next group
        if me.leads:
            self._lead(product)
        return me.result()

    def _lead(self, product: Key) -> None:
        with self._lock:
            group = self._waiting.pop(product)
        matched: set[str] = set()
        try:
            outcomes = _run(product[0], group)
        except BaseException as exc:  # every event of the group shares the failure
            for waiting in group:
                waiting.error = exc
        else:
            for waiting, outcome in zip(group, outcomes, strict=True):
                waiting.outcome = outcome
                if waiting.wake:
                    matched.update(outcome.fresh_ids)
        with self._lock:
            following = self._waiting.get(product)
            if following:
                following[0].leads = True  # the next group goes as soon as this one is done
                following[0].ready.set()
            else:
                self._busy.discard(product)
        for waiting in group:
            waiting.ready.set()
        if matched:  # one wake-up for the whole group, after its commit, by the leader alone
            dispatch.wake(sorted(matched))


def _run(engine: Engine, group: list[_Waiting]) -> list[Outcome]:
    """A statement per event, a result set each: alone in autocommit, or pipelined in one transaction."""
    pooled = engine.raw_connection()
    connection = pooled.driver_connection
    cursor = _cursor(pooled)
    try:
        if len(group) == 1:  # one statement in autocommit: a single round trip
            connection.autocommit = True
            cursor.execute(STATEMENT, group[0].params)
            rows = [cursor.fetchone()]
            connection.autocommit = False
        else:
            cursor.executemany(STATEMENT, [waiting.params for waiting in group], returning=True)
            rows = []
            while True:
                rows.append(cursor.fetchone())
                if not cursor.nextset():
                    break
            connection.commit()
    except BaseException:
        if connection.broken or connection.closed:
            pooled.invalidate()  # not back into the pool
        else:
            pooled.rollback()
            connection.autocommit = False
        raise
    finally:
        pooled.close()
    return [Outcome(row[0], bool(row[1]), None if row[2] is None else list(row[2]), row[3] or []) for row in rows]


def _cursor(pooled: Any) -> Any:
    """The connection's ingest cursor, kept with it in the pool: a new psycopg cursor costs about
    as much client CPU as running the statement, and a kept one also keeps its result loaders.
    The pool drops ``info`` with the connection when it is invalidated."""
    cursor = pooled.info.get("ingest_cursor")
    if cursor is None:
        cursor = pooled.info["ingest_cursor"] = pooled.driver_connection.cursor()
    return cursor


_groups = GroupCommit()


def store(
    digest: str, values: dict, *, event_id: str, now: datetime, last_used_precision: timedelta, wake: bool = True
) -> Outcome:
    """Store the validated event ``values`` for the token with SHA-256 ``digest``; then, if ``wake``,
    wake the workers for the triggers it made due."""
    naive_now = now.astimezone(UTC).replace(tzinfo=None)  # the columns hold naive UTC
    return _groups.store(
        db.engine,
        {
            "digest": digest,
            "vendor": VENDOR,
            "event_id": event_id,
            "client_id": values.get("id"),
            "object_class": values["object_class"],
            "product_id": values["product_id"],
            "object_id": values.get("object_id"),
            "api_url": values.get("api_url"),
            "now": naive_now,
            "used_before": naive_now - last_used_precision,
        },
        wake,
    )
