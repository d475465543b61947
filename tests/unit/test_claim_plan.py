"""A claim reads the rows it takes, whatever PostgreSQL's statistics say: proved by the rows the
executed plan read (``EXPLAIN (ANALYZE, FORMAT JSON)``), not by its shape alone
(docs/architecture.md, "Trigger state")."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import make_webhook
from tests.plans import keyed_nodes, walk_plan
from webhookapp.core.times import utcnow
from webhookapp.engine.triggers import claims
from webhookapp.infra.extensions import db

WEBHOOKS = 20_000
DUE = 600
BATCH = 64


def nodes(statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the executed plan, each with ``read``: the rows it produced and those its
    filters and join filters dropped, over all its loops. The statement's writes are rolled back."""
    compiled = statement.compile(db.engine)
    explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"
    plan = db.session.connection().exec_driver_sql(explain, compiled.construct_params(params)).scalar()[0]["Plan"]
    db.session.rollback()
    return walk_plan(plan)


def generic_nodes(params: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`nodes` of the relaxed claim as its connections run it (:func:`.keyed_nodes`)."""
    text_, constants = claims._claim_sql(db.engine)
    return keyed_nodes(text_, {**constants, **params})


def analyze() -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE webhooks"))  # as autovacuum would


@pytest.mark.postgresql
def test_a_claim_reads_the_rows_it_takes_however_many_are_due(app, postgresql, vendor):
    hook = make_webhook(vendor)
    db.session.execute(text(
        "INSERT INTO webhooks (id, account_id, product_id, label, description, active, out_of_order, object_class,"
        " type, http_method, external_url, jwt_secret_encrypted, headers, data, created_at, modified_at, events_count,"
        " triggers_count, success_count, failure_count, failures_since_last_success, trigger_attempts, lease_attempt)"
        " SELECT 'WH-' || lpad(n::text, 5, '0'), account_id, product_id, label, description, active, out_of_order,"
        " object_class, type, http_method, external_url, jwt_secret_encrypted, headers, data, created_at, modified_at,"
        " 0, 0, 0, 0, 0, 0, 0 FROM webhooks, generate_series(1, :count) AS n WHERE id = :id"),
        {"id": hook.id, "count": WEBHOOKS})  # fmt: skip
    db.session.commit()
    analyze()  # the statistics say no trigger is due, as on a quiet system
    db.session.execute(
        text("UPDATE webhooks SET next_trigger_at = now() - n * interval '1 ms' FROM generate_series(1, :due) AS n"
             " WHERE id = 'WH-' || lpad((n * (:count / :due))::text, 5, '0')"),
        {"due": DUE, "count": WEBHOOKS},
    )  # fmt: skip
    db.session.commit()
    params = {"now": utcnow(), "limit": BATCH, "lease_id": "x", "lease_expires_at": utcnow()}

    naive = {name: value.replace(tzinfo=None) if hasattr(value, "tzinfo") else value for name, value in params.items()}
    for statistics in ("none due", "all due"):
        if statistics == "all due":
            analyze()
        for kind, plan in (("portable", nodes(claims._claim_statement(False), params)),
                           ("relaxed, generic plan", generic_nodes(naive))):  # fmt: skip
            assert plan[0]["Node Type"] == "ModifyTable" and plan[0]["Actual Rows"] == BATCH, (statistics, kind)
            # Each node reads about the batch: the chosen rows are found by their ids, not by
            # matching every due row against every chosen one (600 × 64 when the planner expected
            # one), nor by reading the table (the generic plan expects a tenth of it).
            assert max(node["read"] for node in plan) <= BATCH, (statistics, kind, plan)
            scans = [node for node in plan if "Index Name" in node or "Relation Name" in node]
            assert sum(node["read"] for node in scans) <= 3 * BATCH, (statistics, kind, scans)
