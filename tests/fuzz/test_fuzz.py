"""Fuzzing, bounded so that it adds about a minute to the suite.

- Schemathesis sends every operation of the served OpenAPI document generated requests, valid
  and invalid, with a real token: no answer is a 5xx, and every answer matches the document.
- Hypothesis feeds the field rules and the RQL parser any text: each returns or refuses with its
  own error, never anything else.

``FUZZ_EXAMPLES`` raises the number of examples per operation for a longer run (see the README).
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from webhookapp import create_app
from webhookapp.api import rql
from webhookapp.api.event_views import EVENT_FIELDS
from webhookapp.api.webhook_views import ATTEMPT_FIELDS, WEBHOOK_FIELDS
from webhookapp.core import rules

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# The document is read once, at collection, from an app that needs no database to serve it; the
# requests go to each test's own app (its database and Redis).
schema = schemathesis.openapi.from_wsgi("/public/v1/openapi.json", create_app("testing"))


@schema.parametrize()
@hypothesis.settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_every_operation_answers_as_documented(app, case, hook, token):
    """``hook`` is something for the list, get and attempts operations to find."""
    case.call_and_validate(headers={"Authorization": f"ApiKey {token}"}, checks=CHECKS, app=app)


TEXT_RULES = [rules.label, rules.description, rules.external_url, rules.jwt_secret, rules.http_method,
              rules.header_name, rules.header_value, rules.data_text]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("rule", TEXT_RULES, ids=lambda rule: rule.__name__)
@hypothesis.given(value=st.one_of(st.none(), st.text(), st.text(alphabet=st.characters(codec=None))))
@hypothesis.settings(max_examples=EXAMPLES * 10, deadline=None)
def test_a_field_rule_returns_or_refuses_any_text(rule, value):
    try:
        cleaned = rule(value)
    except rules.RuleError as exc:
        assert str(exc)
        return
    assert cleaned is not None


@hypothesis.given(value=JSON_VALUES)
@hypothesis.settings(max_examples=EXAMPLES * 10, deadline=None)
def test_the_data_rule_returns_or_refuses_any_json(value):
    try:
        rules.data_object(value)
    except rules.RuleError as exc:
        assert str(exc)


@hypothesis.given(pairs=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=30)), max_size=5))
@hypothesis.settings(max_examples=EXAMPLES * 10, deadline=None)
def test_the_header_rule_returns_or_refuses_any_pairs(pairs):
    try:
        rules.headers(pairs)
    except rules.RuleError as exc:
        assert str(exc)


RQL_PIECES = st.sampled_from([
    "eq(", "ne(", "in(", "and(", "or(", "not(", "like(", "ilike(", "ordering(", ")", ",", "(", "label", "id",
    "-created_at", "*", "%2C", "%00", "limit=", "offset=", "&", "=", "gt(", "le(", "created_at", "webhook.id",
    "2026-01-01T00:00:00",
])  # fmt: skip


@pytest.mark.parametrize(
    "fields", [WEBHOOK_FIELDS, ATTEMPT_FIELDS, EVENT_FIELDS], ids=["webhooks", "attempts", "events"]
)
@hypothesis.given(query=st.one_of(st.text(max_size=60), st.lists(RQL_PIECES, max_size=30).map("".join)))
@hypothesis.settings(max_examples=EXAMPLES * 10, deadline=None)
def test_the_rql_parser_returns_or_refuses_any_query(fields, query):
    try:
        rql.parse_query(query, fields, [])
    except rql.RQLError as exc:
        assert exc.status == 400 and exc.messages
