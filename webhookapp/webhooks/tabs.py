"""The details page's tabs, as the platform's Webhook Details screen has them: one shown at a
time, each at its own address (``?tab=``), so that a link, a reload or a browser without
JavaScript shows the same tab."""

from __future__ import annotations

from webhookapp.models import Webhook

TABS = {
    "statistics": "Statistics",
    "http": "HTTP Settings",
    "data": "Custom Data",
    "handler": "Handler code",
    "deliveries": "Deliveries",
    "events": "Events",
    "activity": "Activity",
}
DEFAULT_TAB = "statistics"


def tabs_of(webhook: Webhook) -> dict[str, str]:
    """The webhook's tabs by key, in page order: Custom Data only for a POST webhook, Events only
    for an event webhook (a validation webhook is called with a request, never by events)."""
    return {
        key: label
        for key, label in TABS.items()
        if (key != "data" or webhook.http_method == "POST")
        and (key != "events" or webhook.catalog_entry.kind == "event")
    }


def chosen_tab(webhook: Webhook, asked: str | None) -> str:
    """The tab ``?tab=`` names, or the first one for a missing or unknown name."""
    return asked if asked in tabs_of(webhook) else DEFAULT_TAB
