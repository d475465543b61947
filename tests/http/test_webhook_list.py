"""The webhook list: newest first, 25 a page, search, status and type filters, empty states."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import make_tenant, make_webhook
from tests.engine import api_token, post_event
from webhookapp.infra.extensions import db

START = datetime(2026, 1, 1, tzinfo=UTC)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def rows(response) -> list[str]:
    """The names in the table, top to bottom."""
    assert response.status_code == 200
    return re.findall(r'<a class="row-link" href="/webhooks/WH-\d{3}-\d{3}-\d{3}">([^<]*)</a>', text(response))


def make_hooks(tenant, specs: list[dict]) -> list:
    """Create webhooks one minute apart, in order (the last is the newest)."""
    hooks = []
    for minute, fields in enumerate(specs):
        hook = make_webhook(tenant, **fields)
        hook.created_at = START + timedelta(minutes=minute)
        hooks.append(hook)
    db.session.commit()
    return hooks


@pytest.fixture
def mixed(vendor):
    """Four webhooks: enabled, disabled, out of order, and a listing one."""
    hooks = make_hooks(
        vendor,
        [
            {"label": "Alpha orders"},
            {"label": "Beta billing", "active": False, "type_key": "billing_request.event"},
            {"label": "Gamma broken"},
            {"label": "alphabet listing", "type_key": "listing_request.event"},
        ],
    )
    hooks[2].out_of_order = True
    db.session.commit()
    return hooks


def test_list_is_paginated_25_per_page_newest_first(client, auth, vendor):
    make_hooks(vendor, [{"label": f"Hook {n:02d}"} for n in range(30)])
    auth.login()
    first = client.get("/webhooks")
    assert rows(first) == [f"Hook {n:02d}" for n in range(29, 4, -1)]
    assert len(rows(first)) == 25
    assert "1–25 of 30" in text(first)
    assert "Page 1 of 2" in text(first)
    assert 'rel="next" href="/webhooks?page=2"' in text(first)
    second = client.get("/webhooks?page=2")
    assert rows(second) == ["Hook 04", "Hook 03", "Hook 02", "Hook 01", "Hook 00"]
    assert "26–30 of 30" in text(second)
    assert 'rel="prev" href="/webhooks?page=1"' in text(second)
    assert 'rel="next"' not in text(second)


def test_a_search_is_paged_and_counted_as_the_whole_list_is(client, auth, vendor):
    """A search's keys and count come from one statement; past its last page, the count alone."""
    make_hooks(vendor, [{"label": f"{'Match' if n % 3 else 'Other'} {n:02d}"} for n in range(45)])
    auth.login()
    first, second = client.get("/webhooks?q=match"), client.get("/webhooks?q=match&page=2")
    expected = [f"Match {n:02d}" for n in range(44, -1, -1) if n % 3]
    assert rows(first) + rows(second) == expected and len(rows(first)) == 25
    assert "1–25 of 30" in text(first) and "26–30 of 30" in text(second)
    assert rows(client.get("/webhooks?q=match&page=3")) == []


def test_pagination_keeps_the_filters(client, auth, vendor):
    make_hooks(vendor, [{"label": f"Match {n:02d}"} for n in range(26)] + [{"label": "Other"}])
    auth.login()
    first = client.get("/webhooks?q=match&status=enabled")
    assert len(rows(first)) == 25
    assert 'href="/webhooks?page=2&amp;q=match&amp;status=enabled"' in first.get_data(as_text=True)
    assert rows(client.get("/webhooks?page=2&q=match&status=enabled")) == ["Match 00"]


def test_short_list_has_no_pager(client, auth, mixed):
    auth.login()
    response = client.get("/webhooks")
    assert rows(response) == ["alphabet listing", "Gamma broken", "Beta billing", "Alpha orders"]
    assert "4 webhooks" in text(response)
    assert 'class="pagination"' not in text(response)


def test_search_by_name_is_case_insensitive(client, auth, mixed):
    auth.login()
    assert rows(client.get("/webhooks?q=ALPHA")) == ["alphabet listing", "Alpha orders"]
    assert rows(client.get("/webhooks?q=billing")) == ["Beta billing"]
    assert rows(client.get("/webhooks?q=%20%20gamma%20")) == ["Gamma broken"]


def test_search_by_webhook_id(client, auth, mixed):
    auth.login()
    assert rows(client.get(f"/webhooks?q={mixed[1].id.lower()}")) == ["Beta billing"]
    assert rows(client.get(f"/webhooks?q={mixed[2].id[3:10].lower()}")) == ["Gamma broken"]  # a part of it


def test_search_by_endpoint_url_and_by_an_event(client, auth, vendor, other_vendor):
    orders, _audit, quiet = make_hooks(vendor, [
        {"label": "Orders", "external_url": "https://erp.example.com/Orders-Hook"},
        {"label": "Audit", "external_url": "https://audit.example.com/in"},
        {"label": "Quiet", "type_key": "usage_file.event"},
    ])  # fmt: skip
    theirs = make_webhook(other_vendor, label="Theirs")
    platform = make_tenant("distributor", "Platform", "ops@platform.test")
    posted = {}
    for name, tenant, hook, extra in (
        ("mine", vendor, orders, {"id": "order-77", "object_id": "PR-1234"}),
        ("theirs", other_vendor, theirs, {"id": "order-88", "object_id": "PR-1234"}),
        ("platform", platform, orders, {"id": "platform-9"}),
    ):
        token = api_token(tenant.account, platform=tenant is platform)
        body = {"object_class": hook.object_class, "product_id": hook.product_id, **extra}
        status, answer = post_event(client, token, **body)
        assert status == 202, answer
        posted[name] = answer["id"]
    auth.login()
    assert rows(client.get("/webhooks?q=orders-hook")) == ["Orders"]  # the URL, in any case
    assert rows(client.get("/webhooks?q=audit.example")) == ["Audit"]
    both = ["Audit", "Orders"]  # both match fulfillment events of the product
    assert sorted(rows(client.get(f"/webhooks?q={posted['mine']}"))) == both
    assert sorted(rows(client.get(f"/webhooks?q={posted['mine'].lower()}"))) == both
    assert sorted(rows(client.get("/webhooks?q=order-77"))) == both  # the client's id
    assert sorted(rows(client.get("/webhooks?q=platform-9"))) == both  # a platform token's client id
    assert sorted(rows(client.get("/webhooks?q=PR-1234"))) == both  # the object id, theirs left out
    assert rows(client.get("/webhooks?q=order-88")) == []  # another account's client id
    assert rows(client.get(f"/webhooks?q={posted['theirs']}")) == []  # another account's event
    assert rows(client.get("/webhooks?q=PR-123")) == []  # events are found by their whole ids only
    assert quiet.label not in rows(client.get(f"/webhooks?q={posted['mine']}"))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("enabled", ["alphabet listing", "Alpha orders"]),
        ("disabled", ["Beta billing"]),
        ("out_of_order", ["Gamma broken"]),
        ("", ["alphabet listing", "Gamma broken", "Beta billing", "Alpha orders"]),
    ],
)
def test_filter_by_status(client, auth, mixed, status, expected):
    auth.login()
    response = client.get(f"/webhooks?status={status}")
    assert rows(response) == expected
    if status:
        assert f'<option value="{status}" selected>' in response.get_data(as_text=True)


def test_status_badges(client, auth, mixed):
    auth.login()
    body = text(client.get("/webhooks"))
    assert body.count('<span class="badge badge-ok">Enabled</span>') == 2
    assert body.count('<span class="badge badge-off">Disabled</span>') == 1
    assert body.count('<span class="badge badge-bad">Out of order</span>') == 1


def test_filter_by_type(client, auth, mixed):
    auth.login()
    assert rows(client.get("/webhooks?type=listing_request.event")) == ["alphabet listing"]
    assert rows(client.get("/webhooks?type=billing_request.event")) == ["Beta billing"]
    assert rows(client.get("/webhooks?type=fulfillment_request.event")) == ["Gamma broken", "Alpha orders"]


def test_filters_combine(client, auth, mixed):
    auth.login()
    assert rows(client.get("/webhooks?q=alpha&type=listing_request.event&status=enabled")) == ["alphabet listing"]
    assert rows(client.get("/webhooks?q=alpha&status=disabled")) == []


def test_empty_state_without_webhooks(client, auth, vendor):
    auth.login()
    body = text(client.get("/webhooks"))
    assert "No webhooks yet" in body
    assert "No webhooks match these filters" not in body
    assert '<table class="table">' not in body


@pytest.mark.parametrize(
    "query", ["q=nothing-like-this", "status=out_of_order", "type=usage_file.event", "q=%25", "q=_"]
)
def test_empty_state_when_nothing_matches(client, auth, vendor, query):
    make_hooks(vendor, [{"label": "Plain hook"}])
    auth.login()
    body = text(client.get(f"/webhooks?{query}"))
    assert "No webhooks match these filters" in body
    assert "No webhooks yet" not in body
    assert "Plain hook" not in body


def test_other_accounts_webhooks_are_not_listed(client, auth, vendor, other_vendor):
    theirs = make_webhook(other_vendor, label="Their secret hook")
    make_webhook(vendor, label="Mine")
    auth.login()
    assert rows(client.get("/webhooks")) == ["Mine"]
    response = client.get(f"/webhooks?q={theirs.id}")
    assert rows(response) == []
    assert "Their secret hook" not in text(response)


def test_toggle_from_the_list_returns_to_the_filtered_list(client, auth, mixed):
    auth.login()
    here = "/webhooks?status=enabled"
    assert f'name="next" value="{here}"' in client.get(here).get_data(as_text=True).replace("&amp;", "&")
    response = client.post(f"/webhooks/{mixed[0].id}/disable", data={"next": here})
    assert response.headers["Location"] == here
    assert rows(client.get(here)) == ["alphabet listing"]


def test_filter_by_product_offers_the_products_in_use(client, auth, vendor, other_vendor):
    first, second = vendor.products
    make_hooks(vendor, [{"label": "On first", "product_id": first.id}, {"label": "On second", "product_id": second.id},
                        {"label": "Also first", "product_id": first.id}])  # fmt: skip
    make_webhook(other_vendor, label="Theirs")
    auth.login()
    assert rows(client.get(f"/webhooks?product={first.id}")) == ["Also first", "On first"]
    page = text(client.get("/webhooks"))
    offered = re.findall(r'<option value="(PRD-[\d-]+)"', page)
    assert offered == sorted([first.id, second.id], key=lambda pid: {first.id: first.name, second.id: second.name}[pid])
    assert other_vendor.products[0].id not in page
    # Another account's product is no filter at all: the whole list, no product chosen.
    assert rows(client.get(f"/webhooks?product={other_vendor.products[0].id}")) == ["Also first", "On second",
                                                                                    "On first"]  # fmt: skip


def test_sort_by_name_created_and_status(client, auth, vendor, mixed):
    auth.login()
    assert rows(client.get("/webhooks?sort=name")) == ["Alpha orders", "alphabet listing", "Beta billing",
                                                       "Gamma broken"]  # fmt: skip
    assert rows(client.get("/webhooks?sort=created")) == rows(client.get("/webhooks"))
    assert rows(client.get("/webhooks?sort=nonsense")) == rows(client.get("/webhooks"))
    statuses = re.findall(r'<td data-label="Status"[^>]*>\s*<span class="badge badge-\w+">([^<]+)</span>',
                          text(client.get("/webhooks?sort=status")))  # fmt: skip
    order = ["Enabled", "Failing", "Out of order", "Disabled"]
    assert statuses == sorted(statuses, key=order.index) and len(set(statuses)) == 3
    pager = text(client.get("/webhooks?sort=name&status=enabled"))
    assert '<option value="name" selected>' in pager
