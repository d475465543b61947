"""The webhook type catalog (docs/architecture.md, "Catalog and webhooks") and the Connect-style identifiers."""

from __future__ import annotations

import re

import pytest

from tests.conftest import make_webhook
from webhookapp.core import catalog, ids
from webhookapp.core.catalog import CATALOG, DYNAMIC_VALIDATION

# The catalog, row by row: label, object_class, type, vendor only, needs capability.
CATALOG_TABLE = [
    ("Listing Request", "listing_request", "event", False, None),
    ("Subscription — Billing Request — Queue Changes", "billing_request", "event", False, None),
    (
        "Subscription — Change Request — Draft Validation",
        "fulfillment_request",
        "change_validator",
        True,
        "dynamic_validation",
    ),
    (
        "Subscription — Change Request — Inquiring Validation",
        "fulfillment_request",
        "change_inquiring_validator",
        True,
        None,
    ),
    ("Subscription — Fulfillment Requests — Queue Changes", "fulfillment_request", "event", False, None),
    ("Subscription — Purchase Request — Draft Validation", "fulfillment_request", "validator", True, None),
    (
        "Subscription — Purchase Request — Inquiring Validation",
        "fulfillment_request",
        "inquiring_validator",
        True,
        None,
    ),
    ("Tier 1 Config — Setup Request — Draft Validation", "tier_config_request", "draft_tcr_t1_val", True, None),
    ("Tier 1 Config — Setup Request — Inquiring Validation", "tier_config_request", "tcr_setup_t1_inq_val", True, None),
    ("Tier 1 Config — Update Request — Draft Validation", "tier_config_request", "tcr_update_t1_validator", True, None),
    (
        "Tier 1 Config — Update Request — Inquiring Validation",
        "tier_config_request",
        "tcr_update_t1_inq_val",
        True,
        None,
    ),
    ("Tier 2 Config — Setup Request — Draft Validation", "tier_config_request", "draft_tcr_t2_val", True, None),
    ("Tier 2 Config — Setup Request — Inquiring Validation", "tier_config_request", "tcr_setup_t2_inq_val", True, None),
    ("Tier 2 Config — Update Request — Draft Validation", "tier_config_request", "tcr_update_t2_validator", True, None),
    (
        "Tier 2 Config — Update Request — Inquiring Validation",
        "tier_config_request",
        "tcr_update_t2_inq_val",
        True,
        None,
    ),
    ("Tier Account Request — Queue Changes", "tier_account_request", "event", False, None),
    ("Tier Configuration Request — Queue Changes", "tier_config_request", "event", False, None),
    ("Usage File — Queue Changes", "usage_file", "event", False, None),
]


def test_catalog_has_18_rows():
    assert len(CATALOG) == 18


def test_catalog_keys_and_pairs_are_unique():
    assert len({entry.key for entry in CATALOG}) == 18
    assert len({(entry.object_class, entry.type) for entry in CATALOG}) == 18
    assert len({entry.label for entry in CATALOG}) == 18


def test_catalog_matches_the_catalog_table_row_by_row():
    rows = [(e.label, e.object_class, e.type, e.vendor_only, e.capability) for e in CATALOG]
    assert rows == CATALOG_TABLE


def test_only_the_change_draft_validation_needs_a_capability():
    gated = [entry.key for entry in CATALOG if entry.capability]
    assert gated == ["fulfillment_request.change_validator"]
    assert catalog.by_key("fulfillment_request.change_validator").capability == DYNAMIC_VALIDATION


def test_kind_is_event_for_queue_changes_and_validation_otherwise():
    for entry in CATALOG:
        assert entry.kind == ("event" if entry.type == "event" else "validation"), entry.key
        # Every validation type is vendor-only, every event type is open to distributors.
        assert entry.vendor_only == (entry.kind == "validation"), entry.key
    assert sum(entry.kind == "event" for entry in CATALOG) == 6


def test_every_object_class_is_listed():
    assert {entry.object_class for entry in CATALOG} == set(catalog.OBJECT_CLASSES)


def test_lookup_by_key_and_by_pair():
    entry = catalog.by_key("usage_file.event")
    assert entry is not None
    assert entry.key == "usage_file.event"
    assert catalog.by_pair("usage_file", "event") is entry
    assert catalog.by_key("usage_file.nope") is None
    assert catalog.by_key("") is None
    assert catalog.by_pair("fulfillment_request", "nope") is None


@pytest.mark.parametrize(
    ("key", "is_vendor", "capabilities", "reason"),
    [
        ("listing_request.event", False, set(), None),
        ("listing_request.event", True, set(), None),
        ("fulfillment_request.validator", False, set(), "Available for vendors only."),
        ("fulfillment_request.validator", True, set(), None),
        (
            "fulfillment_request.change_validator",
            True,
            set(),
            "Requires the product's Dynamic Validation capability.",
        ),
        ("fulfillment_request.change_validator", True, {"dynamic_validation"}, None),
        ("fulfillment_request.change_validator", False, {"dynamic_validation"}, "Available for vendors only."),
    ],
)
def test_unavailable_reason(key, is_vendor, capabilities, reason):
    entry = catalog.by_key(key)
    assert catalog.unavailable_reason(entry, is_vendor=is_vendor, capabilities=capabilities) == reason


# --- identifiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "groups", "pattern"),
    [
        ("WH", ids.WEBHOOK_GROUPS, r"^WH-\d{3}-\d{3}-\d{3}$"),
        ("PRD", ids.PRODUCT_GROUPS, r"^PRD-\d{3}-\d{3}-\d{3}$"),
        ("VA", ids.ACCOUNT_GROUPS, r"^VA-\d{3}-\d{3}$"),
        ("PA", ids.ACCOUNT_GROUPS, r"^PA-\d{3}-\d{3}$"),
    ],
)
def test_new_id_format(prefix, groups, pattern):
    made = {ids.new_id(prefix, groups) for _ in range(200)}
    assert all(re.match(pattern, value) for value in made), made
    assert len(made) > 150  # random, not a counter or a constant


def test_ids_of_created_rows(vendor, distributor):
    assert re.match(r"^VA-\d{3}-\d{3}$", vendor.account.id)
    assert re.match(r"^PA-\d{3}-\d{3}$", distributor.account.id)
    assert all(re.match(r"^PRD-\d{3}-\d{3}-\d{3}$", product.id) for product in vendor.products)
    assert re.match(r"^WH-\d{3}-\d{3}-\d{3}$", make_webhook(vendor).id)
