"""Event ingest on PostgreSQL (docs/architecture.md, "PostgreSQL fast paths"): the event API's
hot path, one statement per event.

:data:`STATEMENT` does for one event all that :func:`.ingest.ingest_portable` does with several:
it checks the token (unrevoked, unexpired, with ``events:write``: :data:`.tenancy.USABLE_TOKEN_SQL`)
and notes its use (time and address, to the minute), locks the matching webhooks in id order,
inserts the event unless its client id is already known or the product is not the token's to
see, with its rows of ``event_feeds`` (the other accounts whose webhooks it matched: none unless
a platform token posted it) and its match set (made, with its members, by the first event that
matches it: :mod:`.matches`), and counts the event on the webhooks only if the event row went in.

Events that match the same webhooks contend for the same rows, so a process commits them in
groups (:class:`GroupCommit`): the first request runs its statement at once; requests that
arrive meanwhile with the same token, product and object class (so the same webhooks) go
together as soon as it is done, in one statement over arrays (:data:`GROUP_STATEMENT`). A lone
event waits for nothing; a group pays one statement, one round trip and one commit, and locks
and updates its webhooks once: measured here, a group of two costs PostgreSQL two thirds of two
lone events, a group of four a third. Row locks are taken in id order, as everywhere else.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy import Engine

from webhookapp.core import scopes
from webhookapp.core.times import naive_utc
from webhookapp.engine import dispatch, matches
from webhookapp.engine.reconnect import retrying
from webhookapp.engine.triggers.postgresql import COUNT_EVENT, COUNT_GROUP
from webhookapp.infra.extensions import db
from webhookapp.models import VENDOR
from webhookapp.models.tenancy import LAST_USED_PRECISION, USABLE_PRODUCT_SQL, USABLE_TOKEN_SQL

_MATCHES = f"""
    WITH token AS (
        SELECT t.id, t.account_id, t.is_platform, a.kind = %(vendor)s AND NOT t.is_platform AS vendor_only
        FROM api_tokens t JOIN accounts a ON a.id = t.account_id
        WHERE {USABLE_TOKEN_SQL}
    ),
    used AS (
        UPDATE api_tokens SET last_used_at = %(now)s, last_used_address = %(address)s
        WHERE id = (SELECT id FROM token) AND (last_used_at IS NULL OR last_used_at < %(used_before)s)
    ),
    matched AS MATERIALIZED (
        SELECT w.id, w.account_id FROM webhooks w, token
        WHERE w.product_id = %(product_id)s AND w.object_class = %(object_class)s AND w.type = 'event'
          AND w.active AND (token.is_platform OR w.account_id = token.account_id)
        ORDER BY w.id
        FOR UPDATE OF w
    ),
    known AS (
        SELECT EXISTS (SELECT 1 FROM matched) OR EXISTS (
            SELECT 1 FROM products p, token
            WHERE p.id = %(product_id)s AND {USABLE_PRODUCT_SQL}
        ) AS found
    ),
    fed AS (
        -- The other accounts whose webhooks it matched: only a platform token's event has any.
        SELECT DISTINCT m.account_id FROM matched m, token WHERE m.account_id <> token.account_id
    ),
    set_name AS (SELECT {matches.DIGEST_SQL} AS digest FROM matched),
    known_set AS (SELECT s.id FROM match_sets s, set_name n WHERE s.digest = n.digest),
    new_set AS (
        -- The first event of a new set makes it. Another making it at once commits first: its row
        -- is then taken (a no-op update, so that it is returned), not made twice.
        INSERT INTO match_sets (digest)
        SELECT n.digest FROM set_name n WHERE n.digest IS NOT NULL AND NOT EXISTS (SELECT 1 FROM known_set)
        ON CONFLICT (digest) DO UPDATE SET digest = EXCLUDED.digest
        RETURNING id
    ),
    new_members AS (
        INSERT INTO match_set_webhooks (webhook_id, set_id) SELECT m.id, s.id FROM matched m, new_set s
        ON CONFLICT DO NOTHING
    ),
    match_set AS (SELECT id FROM known_set UNION ALL SELECT id FROM new_set),
"""
"""The token, its use noted, the matching webhooks locked in id order, and whether the product is
the token's to see: the same for one event or a group. ``matched`` is the twin of the webhooks
:func:`.triggers.count_event` matches, written against the ``token`` CTE so that the token is
checked by the same statement; ``tests/unit/test_trigger_twins.py`` checks that both select alike."""

STATEMENT = (
    _MATCHES
    + f"""    stored AS (
        INSERT INTO events
            (id, account_id, client_event_id, object_class, product_id, object_id, api_url, webhook_ids,
             match_set_id, created_at, traceparent)
        SELECT %(event_id)s, token.account_id, %(client_id)s, %(object_class)s, %(product_id)s, %(object_id)s,
               %(api_url)s, COALESCE((SELECT json_agg(id ORDER BY id) FROM matched), '[]'::json),
               (SELECT id FROM match_set LIMIT 1), %(now)s, %(traceparent)s
        FROM token, known WHERE known.found
        ON CONFLICT (account_id, client_event_id) DO NOTHING
        RETURNING id, webhook_ids
    ),
    feeds AS (
        INSERT INTO event_feeds (account_id, created_at, event_id)
        SELECT fed.account_id, %(now)s, stored.id FROM fed, stored
    ),

{COUNT_EVENT}
    SELECT token.account_id, (SELECT found FROM known) AS found, (SELECT webhook_ids FROM stored) AS webhook_ids,
           (SELECT json_agg(id) FROM counted WHERE fresh) AS fresh_ids
    FROM (SELECT 1) AS one LEFT JOIN token ON true
"""
)

GROUP_STATEMENT = (
    _MATCHES
    + f"""    batch AS (
        SELECT * FROM unnest(%(event_ids)s::text[], %(client_ids)s::text[], %(object_ids)s::text[],
                             %(api_urls)s::text[], %(created)s::timestamp[], %(traceparents)s::text[])
            WITH ORDINALITY AS b(event_id, client_id, object_id, api_url, created_at, traceparent, n)
    ),
    stored AS (
        -- In arrival order: of two events with one client id, the first goes in, the second is its duplicate.
        INSERT INTO events
            (id, account_id, client_event_id, object_class, product_id, object_id, api_url, webhook_ids,
             match_set_id, created_at, traceparent)
        SELECT b.event_id, token.account_id, b.client_id, %(object_class)s, %(product_id)s, b.object_id, b.api_url,
               COALESCE((SELECT json_agg(id ORDER BY id) FROM matched), '[]'::json),
               (SELECT id FROM match_set LIMIT 1), b.created_at, b.traceparent
        FROM batch b, token, known WHERE known.found
        ORDER BY b.n
        ON CONFLICT (account_id, client_event_id) DO NOTHING
        RETURNING id, webhook_ids
    ),
    latest AS (
        SELECT b.api_url, b.created_at FROM batch b JOIN stored s ON s.id = b.event_id ORDER BY b.n DESC LIMIT 1
    ),
    feeds AS (  -- every event of the group's feed rows, by this one statement
        INSERT INTO event_feeds (account_id, created_at, event_id)
        SELECT fed.account_id, b.created_at, s.id FROM fed, stored s JOIN batch b ON b.event_id = s.id
    ),

{COUNT_GROUP}
    SELECT token.account_id, (SELECT found FROM known) AS found, s.webhook_ids,
           (SELECT json_agg(id) FROM counted WHERE fresh) AS fresh_ids
    FROM batch b LEFT JOIN token ON true LEFT JOIN stored s ON s.id = b.event_id
    ORDER BY b.n
"""
)
"""One statement for a group of events with the same token, product and object class: a row per
event, in order. Every event of the group reports the triggers the group made due."""


Key = tuple[Engine, str, str, str]  # database, token digest, product, object class: the same webhooks


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
    """Runs concurrent events that match the same webhooks in groups, one statement each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[Key, list[_Waiting]] = {}  # events not yet sent
        self._busy: set[Key] = set()  # keys with a group in flight

    def store(self, engine: Engine, params: dict[str, Any], wake: bool) -> Outcome:
        key = (engine, params["digest"], params["product_id"], params["object_class"])
        me = _Waiting(params, wake)
        with self._lock:
            self._waiting.setdefault(key, []).append(me)
            me.leads = key not in self._busy
            self._busy.add(key)
        if not me.leads:
            me.ready.wait()  # for the outcome, or to lead the next group
        if me.leads:
            self._lead(key)
        return me.result()

    def _lead(self, key: Key) -> None:
        with self._lock:
            group = self._waiting.pop(key)
        matched: set[str] = set()
        try:
            outcomes = _run(key[0], group)
        except BaseException as exc:  # every event of the group shares the failure
            for waiting in group:
                waiting.error = exc
        else:
            for waiting, outcome in zip(group, outcomes, strict=True):
                waiting.outcome = outcome
                if waiting.wake:
                    matched.update(outcome.fresh_ids)
        with self._lock:
            following = self._waiting.get(key)
            if following:
                following[0].leads = True  # the next group goes as soon as this one is done
                following[0].ready.set()
            else:
                self._busy.discard(key)
        for waiting in group:
            waiting.ready.set()
        if matched:  # one wake-up for the whole group, after its commit, by the leader alone
            dispatch.wake(sorted(matched))


def _run(engine: Engine, group: list[_Waiting]) -> list[Outcome]:
    """One statement in autocommit (so one round trip and one transaction): :data:`STATEMENT` for
    a lone event (cheaper than the group statement for one), :data:`GROUP_STATEMENT` for more.

    A statement whose connection died (a restart, a failover) is run again on a fresh one. In
    autocommit it did all of its work or none; if it had in fact committed before the connection
    went, the second run finds its event ids taken, and the events are read back instead.
    """
    runs = itertools.count(1)
    return retrying(
        lambda: _run_once(engine, group, again=next(runs) > 1),
        # The driver's own error: the statement runs on a raw connection, not through SQLAlchemy.
        dropped=lambda exc: isinstance(exc, psycopg.OperationalError),
        # Every pooled connection died with this one: start the pool afresh.
        recover=engine.dispose,
    )


def _run_once(engine: Engine, group: list[_Waiting], *, again: bool) -> list[Outcome]:
    pooled = engine.raw_connection()
    # Declared Optional: None only once the pool has invalidated it, never just after checkout.
    connection = cast("psycopg.Connection[Any]", pooled.driver_connection)
    cursor = _cursor(pooled)
    try:
        connection.autocommit = True
        if len(group) == 1:
            cursor.execute(STATEMENT, group[0].params)
        else:
            cursor.execute(GROUP_STATEMENT, _group_params(group))
        rows = cursor.fetchall()
        connection.autocommit = False
    except psycopg.errors.UniqueViolation as exc:
        if not (again and exc.diag.constraint_name == "pk_events"):
            pooled.rollback()
            connection.autocommit = False
            raise
        rows = _stored(cursor, group)  # the first run committed after all
        connection.autocommit = False
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


def _stored(cursor: Any, group: list[_Waiting]) -> list[tuple[Any, ...]]:
    """The rows the statement would have returned, from the events it stored: whom the token
    belongs to, the matched webhooks (None for an event refused as a known client id). Nobody is
    woken for them; the sweeper finds the triggers they made due."""
    ids = [waiting.params["event_id"] for waiting in group]
    cursor.execute("SELECT id, account_id, webhook_ids FROM events WHERE id = ANY(%s)", [ids])
    stored = {row[0]: row for row in cursor.fetchall()}
    account_id = next(iter(stored.values()))[1]
    return [(account_id, True, stored[event_id][2] if event_id in stored else None, []) for event_id in ids]


def _group_params(group: list[_Waiting]) -> dict[str, Any]:
    """The shared parameters (the first event's) and the events' own as arrays, in arrival order."""
    shared = group[0].params
    params = {name: shared[name] for name in ("digest", "scope", "vendor", "product_id", "object_class", "used_before")}
    params["now"] = group[-1].params["now"]  # a trigger the group makes due is due from its last event
    params["address"] = group[-1].params["address"]  # the token's last use is the group's last event
    for name, column in (("event_id", "event_ids"), ("client_id", "client_ids"), ("object_id", "object_ids"),
                         ("api_url", "api_urls"), ("now", "created"), ("traceparent", "traceparents")):  # fmt: skip
        params[column] = [waiting.params[name] for waiting in group]
    return params


def _cursor(pooled: Any) -> Any:
    """The connection's ingest cursor, kept with it in the pool: a new psycopg cursor costs about
    as much client CPU as running the statement, and a kept one also keeps its result loaders.
    The pool drops ``info`` with the connection when it is invalidated."""
    cursor = pooled.info.get("ingest_cursor")
    if cursor is None:
        cursor = pooled.info["ingest_cursor"] = pooled.driver_connection.cursor()
    return cursor


def parameters(
    digest: str,
    values: dict[str, Any],
    *,
    event_id: str,
    now: datetime,
    address: str | None = None,
    traceparent: str | None = None,
) -> dict[str, Any]:
    """The statement's parameters for the validated event ``values``, the token with SHA-256
    ``digest``, the client ``address`` (noted as the token's last use) and the event's trace
    context (None while tracing is off)."""
    naive_now = naive_utc(now)  # the raw statement bypasses the column type
    return {
        "digest": digest,
        "scope": scopes.like_pattern(scopes.EVENTS_WRITE),
        "address": address,
        "vendor": VENDOR,
        "event_id": event_id,
        "client_id": values.get("id"),
        "object_class": values["object_class"],
        "product_id": values["product_id"],
        "object_id": values.get("object_id"),
        "api_url": values.get("api_url"),
        "now": naive_now,
        "used_before": naive_now - LAST_USED_PRECISION,
        "traceparent": traceparent,
    }


def store(
    groups: GroupCommit,
    digest: str,
    values: dict[str, Any],
    *,
    event_id: str,
    now: datetime,
    address: str | None = None,
    wake: bool = True,
    traceparent: str | None = None,
) -> Outcome:
    """Store the validated event ``values`` for the token with SHA-256 ``digest`` (sent from
    ``address``), in a group of ``groups`` (the process's, :attr:`.Runtime.group_commit`); then,
    if ``wake``, wake the workers for the triggers it made due."""
    params = parameters(digest, values, event_id=event_id, now=now, address=address, traceparent=traceparent)
    return groups.store(db.engine, params, wake)
