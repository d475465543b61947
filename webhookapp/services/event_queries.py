"""The reads of events: a webhook's events (its Events tab, the API's ``webhook.id`` filter, a
handler calling back) and the events an account may see (docs/architecture.md, "Following
events"); :mod:`webhookapp.services.carried_events` says which attempt carried which.

An event names the webhooks it matched in ``webhook_ids``, a JSON list, and notes that set of
webhooks (``match_set_id``, :mod:`webhookapp.engine.matches`): a webhook's events are the ranges
of ``ix_events_match_set_created`` of its sets, newest first, merged. Until the backfill of
migration 0026 is done (:func:`.matches.complete`), they are found by testing each event's list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, cast, exists, false, func, or_, select, true, union_all
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList
from sqlalchemy.sql.util import find_tables
from sqlalchemy.sql.visitors import replacement_traverse

from webhookapp.engine import matches
from webhookapp.infra import paging
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Account, ApiToken, Event, EventFeed, MatchSetWebhook, Webhook

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


def _listed_by(webhook: Webhook) -> ColumnElement[bool]:
    """The events whose list names ``webhook`` (of its product and object class): how they are
    found until every event notes its match set."""
    return and_(
        Event.product_id == webhook.product_id, Event.object_class == webhook.object_class, names_webhook(webhook.id)
    )


def sets_of(webhook_id: str) -> list[int]:
    """The match sets ``webhook_id`` belongs to: a few, however many events it matched."""
    query = select(MatchSetWebhook.set_id).where(MatchSetWebhook.webhook_id == webhook_id)
    return list(db.session.scalars(query.order_by(MatchSetWebhook.set_id)))


def of_webhook(webhook: Webhook) -> ColumnElement[bool]:
    """The events ``webhook`` matched: those of its match sets."""
    if not matches.complete():
        return _listed_by(webhook)
    its_sets = select(MatchSetWebhook.set_id).where(MatchSetWebhook.webhook_id == webhook.id)
    # NOT NULL too: under a NOT, an event that matched nothing (no set) is one it did not match.
    return and_(Event.match_set_id.is_not(None), Event.match_set_id.in_(its_sets))


MERGED_SETS = 64
"""Sets of one webhook read as ranges merged in order; beyond, one scan of their events, sorted."""


def _ranges(set_ids: list[int], condition: ColumnElement[bool] | None) -> Any:
    """The ``id`` and ``created_at`` of the events of ``set_ids`` that meet ``condition``: a
    subquery that PostgreSQL reads as one ordered range per set, merged newest first (each
    branch in its index's order: such a branch is planned on its own and keeps that order)."""
    if not set_ids:
        set_ids = [-1]  # no set: no event
    if len(set_ids) > MERGED_SETS:
        return (
            select(Event.id, Event.created_at)
            .where(Event.match_set_id.in_(set_ids), *_terms(condition))
            .subquery("matched")
        )
    branches = [
        select(Event.id.label("id"), Event.created_at.label("created_at")).where(
            Event.match_set_id == set_id, *_terms(condition)
        )
        for set_id in set_ids
    ]
    if on_postgresql():  # SQLite takes no order inside a union's branch
        branches = [branch.order_by(Event.created_at.desc(), Event.id.desc()) for branch in branches]
    return (branches[0] if len(branches) == 1 else union_all(*branches)).subquery("matched")


def _terms(condition: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [] if condition is None else [condition]


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
    if OWN_WEBHOOK in condition._annotations:  # one term, though an AND itself
        return [condition]
    if isinstance(condition, BooleanClauseList) and condition.operator is operators.and_:
        return [term for clause in condition.clauses for term in _conjuncts(clause)]
    return [condition]


def _own_webhook_read(condition: ColumnElement[bool]) -> str | None:
    """The reader's webhook whose events ``condition`` requires (the marked condition is itself
    a term that must hold, not inside an OR or a NOT); None if it requires none."""
    for term in _conjuncts(condition):
        if OWN_WEBHOOK in term._annotations:
            return str(term._annotations[OWN_WEBHOOK])
    return None


def _webhook_range(webhook_id: str, condition: ColumnElement[bool] | None) -> tuple[Select[Any], Any]:
    """The keys of the events ``webhook_id`` matched that meet ``condition``, newest first: the
    ranges of its sets, the condition inside each. Until the backfill is done: the events tested
    one by one."""
    if not matches.complete():
        listed = select(Event.id) if condition is None else select(Event.id).where(condition)
        return listed.order_by(*NEWEST_FIRST), Event.id
    if condition is not None:

        def replace(element: Any, **_kw: Any) -> Any:
            # This webhook's own term holds for every event of its sets; another webhook's stays.
            if OWN_WEBHOOK in element._annotations:
                return true() if element._annotations[OWN_WEBHOOK] == webhook_id else element
            return None

        condition = replacement_traverse(condition, {}, replace)
    ranges = _ranges(sets_of(webhook_id), condition)
    return select(ranges.c.id).order_by(ranges.c.created_at.desc(), ranges.c.id.desc()), ranges.c.id


def _probes_an_index(condition: ColumnElement[bool]) -> bool:
    """Whether ``condition`` requires one of :data:`PROBED_COLUMNS` to equal a value (or a list)."""
    for term in _conjuncts(condition):
        if isinstance(term, BinaryExpression) and term.operator in (operators.eq, operators.in_op):
            column = term.left
            if getattr(column, "table", None) is Event.__table__ and getattr(column, "key", None) in PROBED_COLUMNS:
                return True
    return False


@dataclass(frozen=True)
class WebhookEvents:
    """The events a webhook matched as a query, and the columns to range and order them by
    (newest first: ``moment``, then ``key``), those of the range that reads them."""

    query: Select[Any]
    moment: Any
    key: Any


def webhook_events(webhook: Webhook) -> WebhookEvents:
    """The events ``webhook`` matched: the ranges of its sets, each event read by its key."""
    if not matches.complete():
        return WebhookEvents(select(Event).where(_listed_by(webhook)), Event.created_at, Event.id)
    ranges = _ranges(sets_of(webhook.id), None)
    return WebhookEvents(select(Event).join(ranges, ranges.c.id == Event.id), ranges.c.created_at, ranges.c.id)


def events_page(webhook: Webhook, *, per_page: int, **position: Any) -> paging.KeysetPage:
    """A page of the webhook's events, newest first (``position``: see :func:`.paging.keyset_page`)."""
    found = webhook_events(webhook)
    return paging.keyset_page(found.query, found.moment, found.key, per_page=per_page, **position)


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
        webhook_id = None if condition is None else _own_webhook_read(condition)
        if webhook_id is not None:
            # Every event one of the account's webhooks matched is visible: the webhook's range.
            return _webhook_range(webhook_id, condition)
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


def webhook_listed(webhook: Webhook) -> Listed:
    """A webhook's events as a list (a handler calling back), newest first: its range."""

    def keys(condition: ColumnElement[bool] | None) -> tuple[Select[Any], Any]:
        mine = of_own_webhook(webhook)
        return _webhook_range(webhook.id, mine if condition is None else and_(mine, condition))

    return Listed(select(Event).where(of_webhook(webhook)), list(NEWEST_FIRST), keys)


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
