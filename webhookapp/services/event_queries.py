"""The reads of events: a webhook's events (its Events tab, the API's ``webhook.id`` filter, a
handler calling back), the events an account may see, and which attempt carried which event
(docs/architecture.md, "Following events").

An event names the webhooks it matched in ``webhook_ids``, a JSON list. A webhook's events are
read through ``ix_events_product_class_created`` (the webhook's product and object class, newest
first) and kept when the list names the webhook: a range of the index, not every event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, cast, exists, false, func, or_, select, tuple_, union_all
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList
from sqlalchemy.sql.util import find_tables
from sqlalchemy.sql.visitors import replacement_traverse

from webhookapp.infra import paging
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Account, ApiToken, Attempt, Event, EventFeed, Webhook

CARRIED_SHOWN = 20
"""Events listed on an attempt's page; the rest are counted and linked to the Events tab."""
NEWEST_FIRST = (Event.created_at.desc(), Event.id.desc())
SEARCHED_EVENTS = 1000
"""Events read for one search (the newest with that id): an object's webhooks are among them."""


def _listed_ids() -> Any:
    """The ids in ``events.webhook_ids`` as a table of one column, ``value``."""
    if on_postgresql():
        return func.jsonb_array_elements_text(cast(Event.webhook_ids, JSONB)).table_valued("value")
    return func.json_each(Event.webhook_ids).table_valued("value")


def names_webhook(webhook_id: str) -> ColumnElement[bool]:
    """``events.webhook_ids`` contains ``webhook_id``.

    PostgreSQL: ``jsonb @> '["WH-…"]'``, one test per row; SQLite: a look into ``json_each``.
    """
    if on_postgresql():
        return cast(Event.webhook_ids, JSONB).contains([webhook_id])
    listed = _listed_ids()
    return exists(select(1).select_from(listed).where(listed.c.value == webhook_id))


def of_webhook(webhook: Webhook) -> ColumnElement[bool]:
    """The events ``webhook`` matched: its product and object class (the index's leading
    columns, so the planner reads a range of it) and its id in their list."""
    return and_(
        Event.product_id == webhook.product_id, Event.object_class == webhook.object_class, names_webhook(webhook.id)
    )


def of_own_webhook(webhook: Webhook) -> ColumnElement[bool]:
    """:func:`of_webhook` for a webhook of the reader's account, marked so that
    :func:`visible_events` knows the events it keeps are visible (they matched the account's
    webhook) and reads the webhook's range alone."""
    return of_webhook(webhook)._annotate({OWN_WEBHOOK: webhook.id})


OWN_WEBHOOK = "own_webhook"
"""The annotation of :func:`of_own_webhook`'s condition."""
PROBED_COLUMNS = frozenset(("id", "object_id", "client_event_id"))
"""Events' columns with an index of their own that names a few events: a filter that asks one of
them for a value is read from that index (and the feed probed), not from the ranges in order."""


def _conjuncts(condition: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    """The terms of ``condition`` that must all hold (the condition itself unless an AND)."""
    if isinstance(condition, BooleanClauseList) and condition.operator is operators.and_:
        return [term for clause in condition.clauses for term in _conjuncts(clause)]
    return [condition]


def _reads_own_webhook(condition: ColumnElement[bool]) -> bool:
    """Whether ``condition`` requires that an event matched one of the reader's webhooks: the
    marked condition is itself a term that must hold (not inside an OR or a NOT)."""
    if OWN_WEBHOOK in condition._annotations:
        return True
    if isinstance(condition, BooleanClauseList) and condition.operator is operators.and_:
        return any(_reads_own_webhook(clause) for clause in condition.clauses)
    return False


def _probes_an_index(condition: ColumnElement[bool]) -> bool:
    """Whether ``condition`` requires one of :data:`PROBED_COLUMNS` to equal a value (or a list)."""
    for term in _conjuncts(condition):
        if isinstance(term, BinaryExpression) and term.operator in (operators.eq, operators.in_op):
            column = term.left
            if getattr(column, "table", None) is Event.__table__ and getattr(column, "key", None) in PROBED_COLUMNS:
                return True
    return False


def webhook_events_query(webhook: Webhook) -> Select[Event]:
    """The events ``webhook`` matched (order them newest first: ``created_at``, ``id``)."""
    return select(Event).where(of_webhook(webhook))


def events_page(webhook: Webhook, *, per_page: int, **position: Any) -> paging.KeysetPage:
    """A page of the webhook's events, newest first (``position``: see :func:`.paging.keyset_page`)."""
    return paging.keyset_page(webhook_events_query(webhook), Event.created_at, Event.id, per_page=per_page, **position)


def visible_condition(account: Account) -> ColumnElement[bool]:
    """The events ``account`` may see: those it posted, and those that matched one of its
    webhooks (an event posted with a platform token is stored under the platform's account and
    may match every account's webhooks: its row of ``event_feeds`` says so). Any other event is
    unknown to it (404). For one event: a probe of the feed's primary key at most."""
    fed = exists(
        select(1).where(
            EventFeed.account_id == account.id,
            EventFeed.created_at == Event.created_at,
            EventFeed.event_id == Event.id,
        )
    )
    return or_(Event.account_id == account.id, fed)


@dataclass(frozen=True)
class Listed:
    """The events a reader may see as a list: ``query`` (to filter and order as a client asks),
    and ``keys``: given the filters' condition (None: none), the keys of the same events in the
    columns of the default ``order``, read cheaper."""

    query: Select[Event]
    order: list[Any]
    keys: Callable[[ColumnElement[bool] | None], tuple[Select[Any], Any]] | None = None


def visible_events(account: Account) -> Listed:
    """The events ``account`` may see (:func:`visible_condition`) as a list, newest first.

    Its keys are the union of two index ranges, each with the filters applied: the events it
    posted (``ix_events_account_created``) and its feed (``event_feeds``' primary key; a time
    range is put on the feed's own time, so that it narrows the range, and the events are
    joined by primary key only for a filter on their other columns). PostgreSQL merges the two
    newest first, so an unfiltered page reads a page and no more, however many events there
    are. A filter by id, object id or client id is read from that column's index instead, and each
    event found probes the feed's primary key (:func:`_probes_an_index`); a filter by one of the
    account's webhooks (:func:`of_own_webhook`) reads that webhook's range alone, as its Events
    tab does. ``query`` (a client's own order) tests each event instead."""
    feed_time = {Event.__table__.c.created_at: EventFeed.__table__.c.created_at}

    def keys(condition: ColumnElement[bool] | None) -> tuple[Select[Any], Any]:
        if condition is not None and _reads_own_webhook(condition):
            # Every event one of the account's webhooks matched is visible: the webhook's range.
            return select(Event.id).where(condition).order_by(*NEWEST_FIRST), Event.id
        own = select(Event.id.label("id"), Event.created_at.label("created_at")).where(Event.account_id == account.id)
        fed = select(EventFeed.event_id.label("id"), EventFeed.created_at.label("created_at")).where(
            EventFeed.account_id == account.id
        )
        if condition is not None:
            own = own.where(condition)
            on_feed = replacement_traverse(condition, {}, lambda element, **_kw: feed_time.get(element))
            if Event.__table__ in find_tables(on_feed, check_columns=True, include_aliases=True):
                # A filter on the events' own columns; both keys of the feed's row, so that an event
                # found by its own index probes the feed's primary key.
                fed = fed.join(Event, and_(Event.id == EventFeed.event_id, Event.created_at == EventFeed.created_at))
            fed = fed.where(on_feed)
        if on_postgresql() and (condition is None or not _probes_an_index(condition)):
            # Each range in its index's order: PostgreSQL plans such a branch on its own and keeps
            # that order, so it merges the two (a branch with a WHERE and no order is not merged).
            own = own.order_by(Event.created_at.desc(), Event.id.desc())
            fed = fed.order_by(EventFeed.created_at.desc(), EventFeed.event_id.desc())
        feed = union_all(own, fed).subquery("feed")
        return select(feed.c.id).order_by(feed.c.created_at.desc(), feed.c.id.desc()), feed.c.id

    return Listed(select(Event).where(visible_condition(account)), list(NEWEST_FIRST), keys)


def webhook_listed(condition: ColumnElement[bool]) -> Listed:
    """A webhook's events as a list (a handler calling back): ``condition``, newest first."""
    return Listed(select(Event).where(condition), list(NEWEST_FIRST))


def get_event(event_id: str, condition: ColumnElement[bool]) -> Event | None:
    """The event with this id if ``condition`` (who asks) lets it be seen; else None."""
    return db.session.scalar(select(Event).where(Event.id == event_id, condition))


def webhook_filter(account: Account) -> Any:
    """The API's ``webhook.id`` filter for ``account``: the events of its webhook with that id,
    read through the webhook's range of the index; another account's webhook matches nothing."""

    def match(webhook_id: str) -> ColumnElement[bool]:
        webhook = db.session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.account_id == account.id))
        return of_own_webhook(webhook) if webhook else false()

    return match


def own_webhook_ids(account_id: str, events: Iterable[Event]) -> set[str]:
    """Which webhooks named by ``events`` belong to the account: one statement per page."""
    named = {webhook_id for event in events for webhook_id in event.webhook_ids or ()}
    if not named:
        return set()
    query = select(Webhook.id).where(Webhook.id.in_(named), Webhook.account_id == account_id)
    return set(db.session.scalars(query))


def matched_by(account: Account, text: str) -> set[str]:
    """The webhooks matched by the events whose id, client id or object id is ``text`` exactly:
    the list's search box; the caller keeps the account's own webhooks."""
    query = matched_query(account, text)
    if query is None:
        return set()
    return {webhook_id for listed in db.session.scalars(query) for webhook_id in listed or ()}


def matched_query(account: Account, text: str) -> Select[Any] | None:
    """The ``webhook_ids`` of the newest :data:`SEARCHED_EVENTS` events :func:`matched_by` finds
    (None for a blank text).

    One index probe per kind of id, whatever the text and however many events there are: the
    primary key, ``ix_events_object_id``, and ``uq_events_account_client_id`` by both its columns
    (the client ids of the account's events and of the platform tokens', whose accounts are read
    first so that the index's leading column is a list of values, not a subquery)."""
    text = text.strip()
    if not text:
        return None
    posters = [account.id, *db.session.scalars(_platform_accounts().where(ApiToken.account_id != account.id))]
    probes = [
        select(Event.webhook_ids, Event.created_at).where(Event.id == text.upper()),
        select(Event.webhook_ids, Event.created_at).where(Event.object_id == text),
        select(Event.webhook_ids, Event.created_at).where(Event.account_id.in_(posters), Event.client_event_id == text),
    ]
    found = union_all(*probes).subquery()
    return select(found.c.webhook_ids).order_by(found.c.created_at.desc()).limit(SEARCHED_EVENTS)


def _platform_accounts() -> Select[str]:
    """The accounts that hold platform tokens (a handful: the platform's own)."""
    return select(ApiToken.account_id).where(ApiToken.is_platform.is_(True)).distinct()


# -- which attempt carried which event ------------------------------------------------------


def _trigger_attempts(webhook_id: str) -> ColumnElement[bool]:
    """The webhook's attempts that delivered a trigger: not validations, not redeliveries."""
    return and_(Attempt.webhook_id == webhook_id, Attempt.kind == "trigger", Attempt.redelivery_of.is_(None))


def carriers(webhook: Webhook, events: list[Event]) -> dict[str, Attempt]:
    """The attempt that carried each event: the webhook's first trigger attempt that started at
    or after the event was stored (ties by id). Events not carried yet are left out.

    One statement for the page: each event's attempt is one probe of the attempts' index."""
    if not events:
        return {}
    first = (
        select(Attempt.id)
        .where(_trigger_attempts(webhook.id), Attempt.started_at >= Event.created_at)
        .order_by(Attempt.started_at, Attempt.id)
        .limit(1)
        .correlate(Event)
        .scalar_subquery()
    )
    pairs = db.session.execute(select(Event.id, first).where(Event.id.in_([event.id for event in events]))).all()
    attempt_ids = {attempt_id for _event_id, attempt_id in pairs if attempt_id is not None}
    if not attempt_ids:
        return {}
    attempts = {
        attempt.id: attempt for attempt in db.session.scalars(select(Attempt).where(Attempt.id.in_(attempt_ids)))
    }
    return {event_id: attempts[attempt_id] for event_id, attempt_id in pairs if attempt_id in attempts}


@dataclass
class Carried:
    """The events an attempt carried: the newest few, how many in all, and the Events tab's
    position (``before``) where they start."""

    items: list[Event]
    total: paging.Count
    before: str


def carried_events(webhook: Webhook, attempt: Attempt, shown: int = CARRIED_SHOWN) -> Carried | None:
    """The events ``attempt`` carried: those stored after the previous trigger attempt started
    and no later than this one started. None for an attempt that carries no events (a
    validation call, a redelivery)."""
    if attempt.kind != "trigger" or attempt.redelivery_of is not None:
        return None
    previous = db.session.scalar(
        select(Attempt.started_at)
        .where(
            _trigger_attempts(webhook.id),
            tuple_(Attempt.started_at, Attempt.id) < tuple_(attempt.started_at, attempt.id),
        )
        .order_by(Attempt.started_at.desc(), Attempt.id.desc())
        .limit(1)
    )
    query = webhook_events_query(webhook).where(Event.created_at <= attempt.started_at)
    if previous is not None:
        query = query.where(Event.created_at > previous)
    items = list(db.session.scalars(query.order_by(Event.created_at.desc(), Event.id.desc()).limit(shown)))
    total = paging.Count(len(items)) if len(items) < shown else paging.bounded_count(query, Event.id)
    # Every event stored up to the attempt's start sorts before this position.
    return Carried(items, total, paging.cursor(attempt.started_at + paging.MICROSECOND, "EV-000-000-000-000"))
