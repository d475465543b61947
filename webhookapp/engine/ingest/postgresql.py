"""Event ingest on PostgreSQL (docs/architecture.md, "PostgreSQL fast paths"): the event API's
hot path, one statement per event.

:data:`.statements.STATEMENT` does for one event all that :func:`.ingest.ingest_portable` does with several:
it checks the token (unrevoked, unexpired, with ``events:write``: :data:`.tenancy.USABLE_TOKEN_SQL`)
and notes its use (time and address, to the minute), locks the matching webhooks in id order,
inserts the event unless its client id is already known or the product is not the token's to
see, with its rows of ``event_feeds`` (the other accounts whose webhooks it matched: none unless
a platform token posted it) and its match set (:mod:`.matches`; the first event of a new set
stores nothing, :data:`.statements.MAKE_SET` makes the set, and the statement runs again), and
counts the event on the webhooks only if the event row went in. A token the process knows not to
be a platform's runs the statement's twin without the feed rows.

Events that match the same webhooks contend for the same rows, so a process commits them in
groups (:class:`GroupCommit`): the first request runs its statement at once; requests that
arrive meanwhile with the same token, product and object class (so the same webhooks) go
together as soon as it is done, in one statement over arrays (:data:`.statements.GROUP_STATEMENT`). A lone
event waits for nothing; a group pays one statement, one round trip and one commit, and locks
and updates its webhooks once: measured here, a group of two costs PostgreSQL two thirds of two
lone events, a group of four a third. Row locks are taken in id order, as everywhere else.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine

from webhookapp.core import scopes
from webhookapp.core.times import naive_utc
from webhookapp.engine import dispatch
from webhookapp.engine.ingest.statements import (
    GROUP_STATEMENT,
    MAKE_SET,
    STATEMENT,
    VENDOR_GROUP_STATEMENT,
    VENDOR_STATEMENT,
)
from webhookapp.engine.reconnect import retrying
from webhookapp.infra.database import raw_autocommit
from webhookapp.infra.extensions import generic_plans_engine
from webhookapp.models import VENDOR
from webhookapp.models.tenancy import LAST_USED_PRECISION

PLATFORM_FLAGS_KEPT = 10_000
"""Tokens whose platform flag a process remembers (all of them, unless there are more)."""
SET_TRIES = 3
"""Ingest statements run for one event whose set is made meanwhile: a second one finds it, unless
a webhook of the product changed between the two (then a third)."""


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
    set_missing: bool = False
    is_platform: bool | None = None  # the token's, None where no token was valid


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
        # Whether a token (by digest) is a platform's, as its statements said: a platform flag
        # never changes, and a token known not to be one runs the statements without feeds.
        self._platform: dict[str, bool] = {}

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
            outcomes = _run(key[0], group, feeds=self._platform.get(key[1], True))
            if outcomes[0].is_platform is not None:
                if len(self._platform) >= PLATFORM_FLAGS_KEPT:
                    self._platform.clear()
                self._platform[key[1]] = outcomes[0].is_platform
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


def _run(engine: Engine, group: list[_Waiting], *, feeds: bool = True) -> list[Outcome]:
    """One statement in autocommit (so one round trip and one transaction): :data:`STATEMENT` for
    a lone event (cheaper than the group statement for one), :data:`GROUP_STATEMENT` for more;
    without ``feeds``, their twins without the feed rows (a token known not to be a platform's).
    The first event of a new match set stores nothing: :data:`MAKE_SET` makes the set, and the
    statement runs again.

    A statement whose connection died (a restart, a failover) is run again on a fresh one. In
    autocommit it did all of its work or none; if it had in fact committed before the connection
    went, the second run finds its event ids taken, and the events are read back instead.
    """
    runs = itertools.count(1)
    return retrying(
        lambda: _run_once(engine, group, feeds=feeds, again=next(runs) > 1),
        # The driver's own error: the statement runs on a raw connection, not through SQLAlchemy.
        dropped=lambda exc: isinstance(exc, psycopg.OperationalError),
        # Every pooled connection died with this one: start the pool afresh.
        recover=engine.dispose,
    )


def _run_once(engine: Engine, group: list[_Waiting], *, feeds: bool, again: bool) -> list[Outcome]:
    if len(group) == 1:
        statement, params = (STATEMENT if feeds else VENDOR_STATEMENT), group[0].params
    else:
        statement, params = (GROUP_STATEMENT if feeds else VENDOR_GROUP_STATEMENT), _group_params(group)
    with raw_autocommit(engine, "ingest_cursor") as cursor:
        try:
            for _ in range(SET_TRIES):
                cursor.execute(statement, params)
                rows = cursor.fetchall()
                if not rows[0][4]:  # the set was found (or none was needed): the events are stored
                    break
                cursor.execute(MAKE_SET, params)
            else:
                raise RuntimeError("The webhooks of the event's product changed while it was stored; send it again.")
        except psycopg.errors.UniqueViolation as exc:
            if not (again and exc.diag.constraint_name == "pk_events"):
                raise
            rows = _stored(cursor, group)  # the first run committed after all
    return [
        Outcome(row[0], bool(row[1]), None if row[2] is None else list(row[2]), row[3] or [], is_platform=row[5])
        for row in rows
    ]


def _stored(cursor: Any, group: list[_Waiting]) -> list[tuple[Any, ...]]:
    """The rows the statement would have returned, from the events it stored: whom the token
    belongs to, the matched webhooks (None for an event refused as a known client id). Nobody is
    woken for them; the sweeper finds the triggers they made due."""
    ids = [waiting.params["event_id"] for waiting in group]
    cursor.execute("SELECT id, account_id, webhook_ids FROM events WHERE id = ANY(%s)", [ids])
    stored = {row[0]: row for row in cursor.fetchall()}
    account_id = next(iter(stored.values()))[1]
    return [
        (account_id, True, stored[event_id][2] if event_id in stored else None, [], False, None) for event_id in ids
    ]


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
    # Planned once per connection, through the indexes (:func:`.database.add_generic_plans_engine`).
    return groups.store(generic_plans_engine(), params, wake)
