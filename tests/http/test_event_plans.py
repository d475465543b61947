"""The reads of events PostgreSQL answers by index probes and ranges, whatever the number of
events: proved by the rows the executed plan read (``EXPLAIN (ANALYZE, FORMAT JSON)``), not by
its shape alone (docs/architecture.md, "Following events")."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import ClauseElement, Executable, text
from sqlalchemy.ext.compiler import compiles

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, post_event
from webhookapp.infra.extensions import db
from webhookapp.services import event_queries


class _Analyze(Executable, ClauseElement):
    """``EXPLAIN (ANALYZE, FORMAT JSON)`` of a statement: run it, and say what each node read."""

    inherit_cache = False

    def __init__(self, statement: Any):
        self.statement = statement


@compiles(_Analyze, "postgresql")
def _analyze_postgresql(element: _Analyze, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, FORMAT JSON) " + compiler.process(element.statement, **kw)


def scans(statement: Any) -> list[dict[str, Any]]:
    """The executed plan's scans of tables and indexes, each with ``read``: the rows it read,
    those its filters then dropped included, over all its loops."""
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node or "Index Name" in node:
            per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            per_loop += node.get("Rows Removed by Index Recheck", 0)
            found.append({**node, "read": per_loop * node["Actual Loops"]})
        for child in node.get("Plans", ()):
            walk(child)

    walk(db.session.execute(_Analyze(statement)).scalar()[0]["Plan"])
    return found


def analyze(table: str) -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {table}"))  # as autovacuum would


# -- the list's search by an event's ids ---------------------------------------------------


@pytest.mark.postgresql
def test_the_search_by_an_event_s_ids_probes_each_index_once(client, postgresql, vendor, other_vendor):
    mine = make_webhook(vendor)
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    fulfillment = {"object_class": "fulfillment_request", "product_id": mine.product_id}
    own = post_event(client, api_token(vendor.account), id="order-77", object_id="PR-77", **fulfillment)[1]["id"]
    post_event(client, api_token(platform.account, platform=True), id="platform-9", **fulfillment)
    # 20,000 events of another account, with client ids and object ids of every kind.
    db.session.execute(text(
        "INSERT INTO events (id, account_id, client_event_id, object_class, product_id, object_id, webhook_ids,"
        " created_at) SELECT 'EV-' || lpad((n / 1000)::text, 3, '0') || '-' || lpad((n % 1000)::text, 3, '0')"
        " || '-000-000', :account, 'order-' || n, 'fulfillment_request', 'PRD-1', 'PR-' || n, '[]'::json,"
        " now() - n * interval '1 second' FROM generate_series(1, 20000) AS n"),
        {"account": other_vendor.account.id})  # fmt: skip
    db.session.commit()
    analyze("events")

    for search, expected in (
        (own, {mine.id}), (own.lower(), {mine.id}), ("order-77", {mine.id}), ("platform-9", {mine.id}),
        ("PR-77", {mine.id}), ("order-5", set()), ("PR-5", set()), ("fulfillment", set()),
    ):  # fmt: skip
        found = event_queries.matched_by(vendor.account, search)
        assert found & {mine.id} == expected, search
        query = event_queries.matched_query(vendor.account, search)
        read = scans(query)
        assert len(read) == 3, read  # one probe per kind of id
        for scan in read:
            assert scan["Node Type"] in ("Index Scan", "Bitmap Index Scan"), scan
            leading = {"pk_events": "id", "ix_events_object_id": "object_id"}.get(scan["Index Name"], "account_id")
            assert re.match(rf"\(+{leading}\)?(::text)? = ", scan["Index Cond"]), scan  # its leading column
        assert sum(scan["read"] for scan in read) <= 3, read  # PR-5 is an event of theirs: read, not kept
    db.session.rollback()
