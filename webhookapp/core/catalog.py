"""The webhook type catalog (docs/architecture.md, "Catalog and webhooks"): one table that drives
the wizard, validation and display.

Each row is an ``(object_class, type)`` pair.  ``kind`` is ``event`` for queue changes (delivered
by workers) or ``validation`` for synchronous validation webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT = "event"
VALIDATION = "validation"
DYNAMIC_VALIDATION = "dynamic_validation"

OBJECT_CLASSES = (
    "listing_request",
    "billing_request",
    "fulfillment_request",
    "tier_account_request",
    "tier_config_request",
    "usage_file",
)


@dataclass(frozen=True)
class WebhookType:
    """One row of the catalog."""

    label: str
    object_class: str
    type: str
    vendor_only: bool = False
    capability: str | None = None
    description: str = ""

    @property
    def key(self) -> str:
        """A stable identifier for forms and URLs, e.g. ``fulfillment_request.event``."""
        return f"{self.object_class}.{self.type}"

    @property
    def kind(self) -> str:
        return EVENT if self.type == "event" else VALIDATION


# The platform documentation's examples, after each description.
CHANGES_EXAMPLE = 'For example, "new {0} has been created", "existing {0} has changed status".'
DRAFT_EXAMPLE = (
    'For example, when a request gets validated by the "shopping cart" of a commerce system before the order is placed.'
)
INQUIRING_EXAMPLE = "New values of parameters and their errors are set without changing the request's status."


def _queue(label: str, object_class: str, what: str, example: str = "") -> WebhookType:
    return WebhookType(
        label,
        object_class,
        "event",
        description=" ".join(filter(None, (f"Triggered on any change in the {what} queue.", example))),
    )


def _validation(
    label: str, object_class: str, type_: str, what: str, capability: str | None = None, example: str = ""
) -> WebhookType:
    return WebhookType(
        label,
        object_class,
        type_,
        vendor_only=True,
        capability=capability,
        description=" ".join(filter(None, (f"Triggered when the {what} needs real-time validation.", example))),
    )


CATALOG: tuple[WebhookType, ...] = (
    _queue("Listing Request", "listing_request", "listing requests", CHANGES_EXAMPLE.format("listing")),
    _queue("Subscription — Billing Request — Queue Changes", "billing_request", "billing requests"),
    _validation(
        "Subscription — Change Request — Draft Validation",
        "fulfillment_request",
        "change_validator",
        "draft subscription change request",
        capability=DYNAMIC_VALIDATION,
        example=DRAFT_EXAMPLE,
    ),
    _validation(
        "Subscription — Change Request — Inquiring Validation",
        "fulfillment_request",
        "change_inquiring_validator",
        "subscription change request inquiring form",
        example=INQUIRING_EXAMPLE,
    ),
    _queue(
        "Subscription — Fulfillment Requests — Queue Changes",
        "fulfillment_request",
        "fulfillment requests",
        CHANGES_EXAMPLE.format("request"),
    ),
    _validation(
        "Subscription — Purchase Request — Draft Validation",
        "fulfillment_request",
        "validator",
        "draft subscription purchase request",
        example=DRAFT_EXAMPLE,
    ),
    _validation(
        "Subscription — Purchase Request — Inquiring Validation",
        "fulfillment_request",
        "inquiring_validator",
        "subscription purchase request inquiring form",
        example=INQUIRING_EXAMPLE,
    ),
    *(
        _validation(
            f"Tier {tier} Config — {stage} Request — {state} Validation",
            "tier_config_request",
            type_,
            f"{state.lower()} tier {tier} configuration {stage.lower()} request",
        )
        for tier, stage, state, type_ in (
            (1, "Setup", "Draft", "draft_tcr_t1_val"),
            (1, "Setup", "Inquiring", "tcr_setup_t1_inq_val"),
            (1, "Update", "Draft", "tcr_update_t1_validator"),
            (1, "Update", "Inquiring", "tcr_update_t1_inq_val"),
            (2, "Setup", "Draft", "draft_tcr_t2_val"),
            (2, "Setup", "Inquiring", "tcr_setup_t2_inq_val"),
            (2, "Update", "Draft", "tcr_update_t2_validator"),
            (2, "Update", "Inquiring", "tcr_update_t2_inq_val"),
        )
    ),
    _queue("Tier Account Request — Queue Changes", "tier_account_request", "tier account requests"),
    _queue("Tier Configuration Request — Queue Changes", "tier_config_request", "tier config requests"),
    _queue("Usage File — Queue Changes", "usage_file", "usage file"),
)

_BY_KEY = {entry.key: entry for entry in CATALOG}
_BY_PAIR = {(entry.object_class, entry.type): entry for entry in CATALOG}


def by_key(key: str) -> WebhookType | None:
    """The catalog row with this ``key``, or None."""
    return _BY_KEY.get(key)


def by_pair(object_class: str, type_: str) -> WebhookType | None:
    """The catalog row for an ``(object_class, type)`` pair, or None."""
    return _BY_PAIR.get((object_class, type_))


def unavailable_reason(entry: WebhookType, *, is_vendor: bool, capabilities: set[str]) -> str | None:
    """Why an account or product cannot use ``entry``, or None when it can."""
    if entry.vendor_only and not is_vendor:
        return "Available for vendors only."
    if entry.capability and entry.capability not in capabilities:
        return "Requires the product's Dynamic Validation capability."
    return None
