"""The event API's statement reads the webhooks an event matches, whatever PostgreSQL's statistics
say, as its connections plan it: once, generically, knowing no product (docs/architecture.md,
"PostgreSQL fast paths"). Proved by the rows the executed plan read."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import make_webhook
from tests.engine import api_token, post_event
from tests.plans import analyze, keyed_nodes
from webhookapp.core.times import utcnow
from webhookapp.engine.ingest import postgresql as ingest_postgresql
from webhookapp.engine.ingest import statements
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.models.tenancy import digest

CROWD = 200  # the webhooks of the other product: a table small enough for a plan to read whole


@pytest.mark.postgresql
def test_an_event_reads_its_own_products_webhooks_beside_a_crowded_product(app, postgresql, client, vendor):
    """Two products, one with a crowd of webhooks and one with a single webhook: the generic plan
    guesses each product's share as the average, most of the table. A plan that reads the table
    whole for the lone webhook's event (as the generic plan did before its connections set
    ``enable_seqscan = off``, and before ``counted`` named its rows as an array) fails here."""
    crowded = make_webhook(vendor)
    lone = make_webhook(vendor, product_id=vendor.products[1].id)
    db.session.execute(text(
        "INSERT INTO webhooks (id, account_id, product_id, label, description, active, out_of_order, object_class,"
        " type, http_method, external_url, jwt_secret_encrypted, headers, data, created_at, modified_at, events_count,"
        " triggers_count, success_count, failure_count, failures_since_last_success, trigger_attempts, lease_attempt,"
        " trigger_serial)"
        " SELECT 'WH-' || lpad(n::text, 5, '0'), account_id, product_id, label, description, active, out_of_order,"
        " object_class, type, http_method, external_url, jwt_secret_encrypted, headers, data, created_at, modified_at,"
        " 0, 0, 0, 0, 0, 0, 0, 0 FROM webhooks, generate_series(1, :count) AS n WHERE id = :id"),
        {"id": crowded.id, "count": CROWD})  # fmt: skip
    db.session.commit()
    analyze("webhooks")
    token = api_token(vendor.account)
    body = {"object_class": "fulfillment_request", "product_id": lone.product_id}
    assert post_event(client, token, **body)[0] == 202  # makes the lone webhook's match set
    values = {"object_class": "fulfillment_request", "product_id": lone.product_id, "id": None}
    params = ingest_postgresql.parameters(digest(token), values, event_id="EV-PLAN-1", now=utcnow())

    group = [
        ingest_postgresql._Waiting(
            ingest_postgresql.parameters(digest(token), values, event_id=f"EV-PLAN-{n}", now=utcnow()), wake=False
        )
        for n in (2, 3)
    ]
    for what, statement, statement_params in (
        ("one event", statements.STATEMENT, params),
        ("a group of two", statements.GROUP_STATEMENT, ingest_postgresql._group_params(group)),
    ):
        plan = keyed_nodes(statement, statement_params)

        on_webhooks = [node for node in plan if node.get("Relation Name") == "webhooks"]
        counted = [node["Actual Rows"] for node in on_webhooks if node["Node Type"] == "ModifyTable"]
        assert counted == [1], (what, "counted on its one webhook")
        webhook_scans = [node for node in on_webhooks if "Scan" in node["Node Type"]]
        assert webhook_scans, (what, plan)
        # Found through ix_webhooks_product_id, counted through pk_webhooks: a row or two each,
        # never the crowd's.
        assert sum(node["read"] for node in webhook_scans) <= 4, (what, webhook_scans)
    db.session.expire_all()
    assert db.session.get(Webhook, lone.id).events_count == 1  # the plan's own event was rolled back
