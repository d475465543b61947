"""``services.webhooks``: the create/update rules every caller (wizard, edit page, API) relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from tests.conftest import make_webhook
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook, tenancy
from webhookapp.services import webhook_changes as service
from webhookapp.services import webhook_queries as queries
from webhookapp.services.webhook_changes import WebhookValidationError

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def webhook_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Webhook))


def stored(webhook_id: str) -> Webhook | None:
    """The committed row: drop whatever the session holds and read again."""
    db.session.rollback()
    return db.session.get(Webhook, webhook_id)


# --- create --------------------------------------------------------------------------------------


def test_create_stores_exact_values(vendor):
    webhook = make_webhook(
        vendor,
        label="  Orders  ",
        description="Order queue",
        headers=[("X-Api-Key", "abc"), ("X-Env", "prod")],
        data={"purpose": "demo"},
        jwt_secret="my-secret",
    )
    row = stored(webhook.id)
    assert row.account_id == vendor.account.id
    assert row.product_id == vendor.products[0].id
    assert (row.object_class, row.type) == ("fulfillment_request", "event")
    assert (row.label, row.description, row.active, row.out_of_order) == ("Orders", "Order queue", True, False)
    assert (row.http_method, row.external_url) == ("POST", "https://handler.example.com/hook")
    assert row.jwt_secret == "my-secret"
    assert row.headers == {"X-Api-Key": "abc", "X-Env": "prod"}
    assert row.data == {"purpose": "demo"}
    assert row.created_at == row.modified_at
    assert row.status == "Enabled"


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_create_generates_a_strong_secret_when_empty(vendor, secret):
    first = make_webhook(vendor, jwt_secret=secret)
    second = make_webhook(vendor, jwt_secret=secret)
    assert len(first.jwt_secret) >= 32
    assert first.jwt_secret != second.jwt_secret


def test_create_with_get_drops_data(vendor):
    webhook = make_webhook(vendor, http_method="get", data={"purpose": "demo"})
    assert stored(webhook.id).http_method == "GET"
    assert stored(webhook.id).data == {}


def test_create_collects_every_field_error_and_creates_nothing(vendor):
    with pytest.raises(WebhookValidationError) as error:
        make_webhook(
            vendor,
            label="",
            external_url="ftp://x.example",
            http_method="PUT",
            headers=[("Host", "x")],
            data=[1, 2],
            type_key="nope",
        )
    assert error.value.errors == {
        "label": ["Name is required."],
        "external_url": ["Endpoint URL must start with http:// or https://."],
        "http_method": ["Method must be GET or POST."],
        "headers": ["The Host header is set by the webhook service and cannot be overridden."],
        "data": ['Additional data must be a JSON object, such as {"purpose": "demo"}.'],
        "type_key": ["Choose one of the listed types."],
    }
    assert webhook_count() == 0


def test_create_refuses_another_vendors_product(vendor, other_vendor):
    with pytest.raises(WebhookValidationError) as error:
        make_webhook(vendor, product_id=other_vendor.products[0].id)
    assert error.value.errors == {"product_id": ["Choose one of the products available to your account."]}
    assert webhook_count() == 0


def test_distributor_may_use_any_product_but_not_vendor_only_types(vendor, distributor):
    hook = make_webhook(distributor, product_id=vendor.products[0].id, type_key="listing_request.event")
    assert stored(hook.id).account_id == distributor.account.id
    with pytest.raises(WebhookValidationError) as error:
        make_webhook(distributor, product_id=vendor.products[0].id, type_key="fulfillment_request.validator")
    assert error.value.errors == {
        "type_key": ["Subscription — Purchase Request — Draft Validation: Available for vendors only."]
    }
    assert webhook_count() == 1


def test_capability_gated_type_needs_dynamic_validation(vendor):
    plain, dynamic = vendor.products
    with pytest.raises(WebhookValidationError) as error:
        make_webhook(vendor, product_id=plain.id, type_key="fulfillment_request.change_validator")
    assert error.value.errors["type_key"] == [
        "Subscription — Change Request — Draft Validation: Requires the product's Dynamic Validation capability."
    ]
    hook = make_webhook(vendor, product_id=dynamic.id, type_key="fulfillment_request.change_validator")
    assert (hook.object_class, hook.type) == ("fulfillment_request", "change_validator")


def test_active_must_be_a_boolean(vendor):
    with pytest.raises(WebhookValidationError) as error:
        make_webhook(vendor, active="yes")
    assert error.value.errors == {"active": ["Enabled must be true or false."]}


def test_usable_products_vendor_own_distributor_all(vendor, other_vendor, distributor):
    own = {p.id for p in vendor.products}
    assert {p.id for p in tenancy.usable_products(vendor.account)} == own
    every = own | {p.id for p in other_vendor.products}
    assert {p.id for p in tenancy.usable_products(distributor.account)} == every
    assert tenancy.usable_product(vendor.account, other_vendor.products[0].id) is None
    assert tenancy.usable_product(distributor.account, other_vendor.products[0].id) is not None


def test_get_webhook_is_scoped_to_the_account(vendor, other_vendor):
    hook = make_webhook(vendor)
    assert queries.get_webhook(vendor.account, hook.id) is hook
    assert queries.get_webhook(other_vendor.account, hook.id) is None


# --- update --------------------------------------------------------------------------------------


def test_update_refuses_to_change_product_or_type(vendor):
    hook = make_webhook(vendor)
    before = (hook.product_id, hook.object_class, hook.type, hook.label)
    with pytest.raises(WebhookValidationError) as error:
        service.update_webhook(
            hook, {"product_id": vendor.products[1].id, "type_key": "listing_request.event", "label": "New"}
        )
    assert error.value.errors == {
        "product_id": ["The product cannot be changed after creation."],
        "type_key": ["The type cannot be changed after creation."],
    }
    row = stored(hook.id)
    assert (row.product_id, row.object_class, row.type, row.label) == before


def test_update_accepts_the_same_product_and_type(vendor):
    hook = make_webhook(vendor)
    service.update_webhook(
        hook, {"product_id": hook.product_id, "type_key": "fulfillment_request.event", "label": "Renamed"}
    )
    assert stored(hook.id).label == "Renamed"


def test_update_to_get_drops_data(vendor):
    hook = make_webhook(vendor, data={"purpose": "demo"})
    service.update_webhook(hook, {"http_method": "GET", "data": {"ignored": True}})
    row = stored(hook.id)
    assert (row.http_method, row.data) == ("GET", {})


@pytest.mark.parametrize("empty", ["", "  ", None])
def test_update_with_empty_secret_keeps_the_old_one(vendor, empty):
    hook = make_webhook(vendor, jwt_secret="original-secret")
    service.update_webhook(hook, {"jwt_secret": empty, "label": "Renamed"})
    row = stored(hook.id)
    assert (row.jwt_secret, row.label) == ("original-secret", "Renamed")


def test_update_with_a_new_secret_replaces_it(vendor):
    hook = make_webhook(vendor, jwt_secret="original-secret")
    service.update_webhook(hook, {"jwt_secret": "  rotated-secret "})
    assert stored(hook.id).jwt_secret == "rotated-secret"


def test_invalid_update_changes_nothing(vendor):
    hook = make_webhook(vendor, label="Keep", headers={"X-A": "1"})
    Webhook.query.filter_by(id=hook.id).update({"modified_at": LONG_AGO})
    db.session.commit()
    with pytest.raises(WebhookValidationError):
        service.update_webhook(hook, {"label": "Fine", "external_url": "javascript:alert(1)"})
    row = stored(hook.id)
    assert (row.label, row.external_url, row.headers) == ("Keep", "https://handler.example.com/hook", {"X-A": "1"})
    assert row.modified_at == LONG_AGO


def test_update_sets_modified_at(vendor):
    hook = make_webhook(vendor)
    Webhook.query.filter_by(id=hook.id).update({"modified_at": LONG_AGO})
    db.session.commit()
    service.update_webhook(stored(hook.id), {"label": "Renamed"})
    row = stored(hook.id)
    assert row.modified_at > LONG_AGO
    assert row.created_at > LONG_AGO


def test_enabling_through_update_clears_out_of_order(vendor):
    hook = make_webhook(vendor, active=False)
    hook.out_of_order = True
    db.session.commit()
    service.update_webhook(hook, {"active": True})
    row = stored(hook.id)
    assert (row.active, row.out_of_order, row.status) == (True, False, "Enabled")


def test_set_enabled_toggles_and_clears_out_of_order(vendor):
    hook = make_webhook(vendor, active=True)
    hook.out_of_order = True
    db.session.commit()
    assert stored(hook.id).status == "Out of order"
    service.set_enabled(stored(hook.id), False)
    assert (stored(hook.id).active, stored(hook.id).status) == (False, "Disabled")
    service.set_enabled(stored(hook.id), True)
    row = stored(hook.id)
    assert (row.active, row.out_of_order, row.status) == (True, False, "Enabled")


def test_list_query_search_treats_wildcards_literally(vendor):
    make_webhook(vendor, label="100% uptime")
    make_webhook(vendor, label="Plain")
    make_webhook(vendor, label="snake_case")
    labels = lambda q: sorted(w.label for w in db.session.scalars(queries.list_query(vendor.account, q)))  # noqa: E731
    assert labels("%") == ["100% uptime"]
    assert labels("_") == ["snake_case"]
    assert labels("PLAIN") == ["Plain"]
