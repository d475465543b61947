"""RQL on the management API's list endpoints (docs/architecture.md, "Management API"): filters,
ordering, paging, errors; the parser."""

from __future__ import annotations

import os

import pytest
from flask.testing import FlaskClient

from tests.conftest import make_webhook
from webhookapp.api.rql import Node, RQLError, parse_expression

URL = "/public/v1/notifications/webhooks"
ON_SQLITE = not os.environ.get("TEST_DATABASE_URL")


# --- webhookapp.api.rql.parse_expression -------------------------------------------------------


def test_parse_expression_builds_a_tree_of_nodes():
    node = parse_expression("and(eq(label,a),in(type,(event,validator)),not(like(label,*x*)))")
    assert node == Node(
        "and",
        [
            Node("eq", ["label", "a"]),
            Node("in", ["type", Node("", ["event", "validator"])]),
            Node("not", [Node("like", ["label", "*x*"])]),
        ],
    )


def test_parse_expression_unquotes_each_value_and_trims_spaces():
    assert parse_expression(" eq( label , a%2Cb%20c ) ") == Node("eq", ["label", "a,b c"])
    assert parse_expression("and()") == Node("and", [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eq(label,x", "Missing ')'"),
        ("eq(label,x))", "Unexpected ')' after 'eq(label,x)'"),
        (")", "Unexpected ')'"),
        ("eq(label,,x)", "Unexpected ','"),
        ("label", "is not an RQL expression"),
        ("", "ends too early"),
    ],
)
def test_parse_expression_refuses_malformed_text(text, message):
    with pytest.raises(RQLError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_expression(text)


def test_parse_expression_trailing_text_names_the_parsed_term():
    with pytest.raises(RQLError) as caught:
        parse_expression("eq(a,1)xyz")
    assert "'eq(a,1)'" in str(caught.value) or "'xyz'" in str(caught.value)


# --- filters on GET /public/v1/notifications/webhooks ------------------------------------------


@pytest.fixture
def hooks(vendor, other_vendor) -> dict[str, str]:
    """Five webhooks of the vendor (label → id), plus one of another vendor that must never show."""
    p0, p1 = (product.id for product in vendor.products)
    made = {
        "alpha": make_webhook(vendor, label="alpha", product_id=p0, type_key="fulfillment_request.event"),
        "bravo": make_webhook(vendor, label="bravo", product_id=p0, type_key="listing_request.event", active=False),
        "charlie": make_webhook(vendor, label="charlie", product_id=p0, type_key="fulfillment_request.validator"),
        "delta": make_webhook(vendor, label="delta", product_id=p1, type_key="usage_file.event"),
        "echo hook": make_webhook(
            vendor, label="echo hook", product_id=p1, type_key="tier_config_request.draft_tcr_t1_val", active=False
        ),
    }
    make_webhook(other_vendor, label="alpha")
    return {label: hook.id for label, hook in made.items()} | {"P0": p0, "P1": p1}


def listing(client: FlaskClient, token: str, query: str):
    return client.get(f"{URL}?{query}", headers={"Authorization": f"ApiKey {token}"})


def labels(client: FlaskClient, token: str, query: str) -> list[str]:
    response = listing(client, token, query)
    assert response.status_code == 200, response.get_json()
    return [item["label"] for item in response.get_json()]


ALL = {"alpha", "bravo", "charlie", "delta", "echo hook"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("eq(label,alpha)", {"alpha"}),
        ("label=alpha", {"alpha"}),
        ("eq(label,echo%20hook)", {"echo hook"}),
        ("label=echo+hook", {"echo hook"}),
        ("ne(label,alpha)", ALL - {"alpha"}),
        ("in(label,(alpha,bravo))", {"alpha", "bravo"}),
        ("out(label,(alpha,bravo))", {"charlie", "delta", "echo hook"}),
        ("like(label,*ha*)", {"alpha", "charlie"}),
        ("like(label,echo*)", {"echo hook"}),
        ("like(label,*o)", {"bravo"}),
        ("like(label,a_pha)", set()),  # _ and % are literal characters, * is the wildcard
        ("like(label,%25)", set()),
        ("ilike(label,*HOOK)", {"echo hook"}),
        ("ilike(label,A*)", {"alpha"}),
        ("eq(active,true)", {"alpha", "charlie", "delta"}),
        ("active=false", {"bravo", "echo hook"}),
        ("eq(type,event)", {"alpha", "bravo", "delta"}),
        ("in(type,(validator,draft_tcr_t1_val))", {"charlie", "echo hook"}),
        ("type=validator", {"charlie"}),
        ("eq(object_class,fulfillment_request)", {"alpha", "charlie"}),
        ("ne(object_class,fulfillment_request)", {"bravo", "delta", "echo hook"}),
        ("eq(product.id,{P1})", {"delta", "echo hook"}),
        ("product.id={P0}", {"alpha", "bravo", "charlie"}),
        ("eq(id,{alpha})", {"alpha"}),
        ("id={delta}", {"delta"}),
        ("in(id,({alpha},{bravo}))", {"alpha", "bravo"}),
        ("out(id,({alpha},{bravo}))", {"charlie", "delta", "echo hook"}),
        ("and(eq(type,event),eq(active,true))", {"alpha", "delta"}),
        ("eq(type,event)&eq(active,true)", {"alpha", "delta"}),
        ("or(eq(label,alpha),eq(object_class,usage_file))", {"alpha", "delta"}),
        ("not(eq(type,event))", {"charlie", "echo hook"}),
        ("and(not(eq(active,true)),or(eq(product.id,{P0}),like(label,echo*)))", {"bravo", "echo hook"}),
        ("select(-stats)&eq(label,alpha)", {"alpha"}),
        ("", ALL),
    ],
)
def test_filters(client, token, hooks, query, expected):
    assert set(labels(client, token, query.format(**hooks))) == expected


def test_like_is_case_sensitive_and_ilike_is_not(client, token, hooks):
    assert labels(client, token, "like(label,ALPHA)") == []
    assert labels(client, token, "ilike(label,ALPHA)") == ["alpha"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ordering(label)", ["alpha", "bravo", "charlie", "delta", "echo hook"]),
        ("ordering(-label)", ["echo hook", "delta", "charlie", "bravo", "alpha"]),
        ("ordering(type,-label)", ["echo hook", "delta", "bravo", "alpha", "charlie"]),
        ("ordering(-active,label)", ["alpha", "charlie", "delta", "bravo", "echo hook"]),
        ("ordering(product.id,+label)&eq(active,true)", ["alpha", "charlie", "delta"]),
    ],
)
def test_ordering(client, token, hooks, query, expected):
    if "product.id" in query and hooks["P0"] > hooks["P1"]:
        expected = ["delta", "alpha", "charlie"]
    assert labels(client, token, query) == expected


def test_content_range_on_every_page(client, token, vendor):
    for number in range(25):
        make_webhook(vendor, label=f"hook {number:02}")
    seen = []
    for offset, expected in ((0, "items 0-9/25"), (10, "items 10-19/25"), (20, "items 20-24/25")):
        response = listing(client, token, f"limit=10&offset={offset}")
        assert response.status_code == 200
        assert response.headers["Content-Range"] == expected
        seen += [item["id"] for item in response.get_json()]
    assert len(seen) == len(set(seen)) == 25

    count_only = listing(client, token, "limit=0")
    assert count_only.get_json() == []
    assert count_only.headers["Content-Range"].endswith("/25")
    past_the_end = listing(client, token, "limit=10&offset=30")
    assert past_the_end.get_json() == []
    assert past_the_end.headers["Content-Range"].endswith("/25")
    filtered = listing(client, token, "like(label,hook 1*)&limit=4&offset=4&ordering(label)")
    assert filtered.headers["Content-Range"] == "items 4-7/10"
    assert [item["label"] for item in filtered.get_json()] == ["hook 14", "hook 15", "hook 16", "hook 17"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("gt(label,x)", "gt() applies to times and numbers; label is not one"),
        ("lte(created_at,x)", "Unknown operator 'lte'"),
        ("eq(colour,red)", "Cannot filter on 'colour'"),
        ("colour=red", "Unknown parameter 'colour'"),
        ("eq(label,x", "Missing ')'"),
        ("and(eq(label,x)", "Missing ')'"),
        ("eq(label,x))", "Unexpected ')' after 'eq(label,x)'"),
        ("eq(active,maybe)", "'maybe' is not true or false"),
        ("active=yes", "'yes' is not true or false"),
        ("eq(label)", "takes a field and a value"),
        ("not(eq(label,a),eq(label,b))", "not() takes one condition"),
        ("ordering(colour)", "Cannot order by 'colour'"),
        ("limit=ten", "whole numbers"),
        ("limit=1.5", "whole numbers"),
        ("offset=-1", "offset 0 or more"),
        ("limit=1001", "limit must be 0 to 1000"),
        ("limit=-1", "limit must be 0 to 1000"),
        ("eq(created_at,yesterday)", "not an ISO 8601"),
    ],
)
def test_bad_rql_is_a_400_with_a_message(client, token, hooks, query, message):
    response = listing(client, token, query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error_code"] == "RQL_001"
    assert any(message in error for error in body["errors"]), body["errors"]


def test_created_at_filter_without_a_time_zone_is_read_as_utc(client, token, hooks):
    assert len(labels(client, token, "ne(created_at,2020-01-01T00:00:00)")) == 5


def test_bad_attempt_id_value_names_the_value(client, token, hooks):
    answer = client.get(f"{URL}/{hooks['alpha']}/attempts?eq(id,abc)", headers={"Authorization": f"ApiKey {token}"})
    assert answer.status_code == 400
    assert any("abc" in error for error in answer.get_json()["errors"]), answer.get_json()
