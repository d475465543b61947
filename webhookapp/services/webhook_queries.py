"""The account-scoped reads of webhooks and their attempts: the list, its search, the delivery
pages and the success rates (docs/architecture.md, "Scale"). Each reads through an index, at
any depth of any list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, any_, case, func, or_, select
from sqlalchemy.orm import selectinload

from webhookapp.core import catalog
from webhookapp.core.times import utcnow
from webhookapp.infra import paging
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Account, Attempt, Product, Webhook, WebhookSearch
from webhookapp.services import event_queries

MAX_ATTEMPT_ID = 2**63 - 1  # SQLite's largest integer; beyond it the driver refuses the parameter
STATUSES = {"enabled": "Enabled", "failing": "Failing", "out_of_order": "Out of order", "disabled": "Disabled"}


def get_webhook(account: Account, webhook_id: str) -> Webhook | None:
    """The account's webhook with this id; None for unknown ids and other accounts' webhooks."""
    return db.session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.account_id == account.id))


def search_condition(search: str, account: Account) -> ColumnElement[bool]:
    """The list page's search box: the name, the id or the endpoint URL contains ``search`` (any
    case), or an event whose id, client id or object id is ``search`` matched the webhook.

    The names, ids and URLs are read from ``webhook_search`` (:class:`.WebhookSearch`), through a
    trigram index on PostgreSQL, rather than from every webhook of the account. There the
    matches are an array found first (``= ANY(array(…))``, run once), then each webhook read by
    its key: as ``IN (…)``, fresh statistics (which expect a few dozen matches where a short
    text has a thousand) led PostgreSQL to walk the account's webhooks in list order testing
    each one (114 ms for 20,000, against 10)."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = select(WebhookSearch.webhook_id).where(
        WebhookSearch.account_id == account.id, WebhookSearch.text.ilike(f"%{escaped}%", escape="\\")
    )
    matched = event_queries.matched_by(account, search)
    contains = Webhook.id == any_(func.array(found.scalar_subquery())) if on_postgresql() else Webhook.id.in_(found)
    return or_(contains, Webhook.id.in_(sorted(matched))) if matched else contains


NEWEST_WEBHOOKS_FIRST = (Webhook.created_at.desc(), Webhook.id.desc())


_RETRYING = or_(Webhook.trigger_attempts > 0, Webhook.lease_attempt > 1)  # Webhook.failing, in SQL
_STATUS_ORDER = case(
    (Webhook.active.is_(False), 3), (Webhook.out_of_order.is_(True), 2), (_RETRYING, 1), else_=0
)  # the order of STATUSES
SORTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "created": ("Newest first", NEWEST_WEBHOOKS_FIRST),  # ix_webhooks_account_created
    "name": ("Name", (func.lower(Webhook.label), Webhook.id)),  # the same order on SQLite and PostgreSQL
    "status": ("Status", (_STATUS_ORDER, *NEWEST_WEBHOOKS_FIRST)),
}


def list_query(
    account: Account, search: str = "", status: str = "", type_key: str = "", product_id: str = "", sort: str = ""
) -> Select[Webhook]:
    """The account's webhooks narrowed by name search, status, type and product, in the order
    ``sort`` names (:data:`SORTS`; newest first by default)."""
    query = select(Webhook).where(Webhook.account_id == account.id)
    if product_id:
        query = query.where(Webhook.product_id == product_id)
    if search:
        query = query.where(search_condition(search, account))
    if status == "enabled":
        query = query.where(Webhook.active.is_(True), Webhook.out_of_order.is_(False), ~_RETRYING)
    elif status == "failing":
        query = query.where(Webhook.active.is_(True), Webhook.out_of_order.is_(False), _RETRYING)
    elif status == "disabled":
        query = query.where(Webhook.active.is_(False))
    elif status == "out_of_order":
        query = query.where(Webhook.active.is_(True), Webhook.out_of_order.is_(True))
    entry = catalog.by_key(type_key)
    if entry:
        query = query.where(Webhook.object_class == entry.object_class, Webhook.type == entry.type)
    return query.order_by(*SORTS.get(sort, SORTS["created"])[1])


def products_in_use(account: Account) -> list[Product]:
    """The products the account's webhooks watch, by name: the list's product filter.

    Read as a skip scan of ``ix_webhooks_account_product``: each step finds the next product id
    after the last one, one index probe per product, where a ``DISTINCT`` reads an entry per
    webhook (20,000 in a big account: 5.7 ms against well under 1)."""
    mine = Webhook.account_id == account.id
    first = select(Webhook.product_id).where(mine).order_by(Webhook.product_id).limit(1).scalar_subquery()
    used = select(first.label("product_id")).cte("used", recursive=True)
    after = (
        select(Webhook.product_id)
        .where(mine, Webhook.product_id > used.c.product_id)
        .order_by(Webhook.product_id)
        .limit(1)
        .scalar_subquery()
    )
    used = used.union_all(select(after).where(used.c.product_id.is_not(None)))
    listed = select(Product).where(Product.id.in_(select(used.c.product_id))).order_by(Product.name, Product.id)
    return list(db.session.scalars(listed))


def list_page(account: Account, page: int, per_page: int, **filters: str) -> paging.OffsetPagination:
    """A page of :func:`list_query` in three statements (count, keys, rows with their products);
    two with a search, whose keys and count come together (:class:`.paging.OffsetPagination`)."""
    return paging.OffsetPagination(
        page=page, per_page=per_page, max_per_page=per_page, error_out=False,
        select=list_query(account, **filters), key=Webhook.id, options=[selectinload(Webhook.product)],
        counted_with_keys=bool(filters.get("search")),
    )  # fmt: skip


def attempts_query(webhook: Webhook, outcome: str = "") -> Select[Attempt]:
    """The webhook's delivery attempts; ``outcome`` is success, failure or empty."""
    query = select(Attempt).where(Attempt.webhook_id == webhook.id)
    if outcome in ("success", "failure"):
        # "= false", which PostgreSQL reads as NOT success: the failures' partial index applies.
        query = query.where(Attempt.success == (outcome == "success"))
    return query


def attempts_page(webhook: Webhook, outcome: str = "", *, per_page: int, **position: Any) -> paging.KeysetPage:
    """A page of the webhook's attempts, newest first (``position``: see :func:`.paging.keyset_page`)."""
    return paging.keyset_page(
        attempts_query(webhook, outcome), Attempt.started_at, Attempt.id, per_page=per_page, **position
    )


def get_attempt(webhook: Webhook, attempt_id: int) -> Attempt | None:
    """One attempt of this webhook; None for another webhook's (and so another account's), and for
    an id no database integer holds (a URL may carry any number of digits)."""
    if not 1 <= attempt_id <= MAX_ATTEMPT_ID:
        return None
    return db.session.scalar(select(Attempt).where(Attempt.id == attempt_id, Attempt.webhook_id == webhook.id))


def success_rates(webhook_ids: list[str], hours: int = 24) -> dict[str, tuple[int, int]]:
    """Successes and attempts of each webhook over the last ``hours``, in one statement that
    reads the attempts' covering index alone."""
    if not webhook_ids:
        return {}
    since = utcnow() - timedelta(hours=hours)
    rows = db.session.execute(
        select(Attempt.webhook_id, func.count().filter(Attempt.success.is_(True)), func.count())
        .where(Attempt.webhook_id.in_(webhook_ids), Attempt.started_at >= since)
        .group_by(Attempt.webhook_id)
    )
    return {webhook_id: (successes, total) for webhook_id, successes, total in rows}
