"""Prometheus metrics (docs/architecture.md, "Operations"): the counters the web processes and
the workers increment as things happen.

Counting is an increment, nothing more, so the event API and the delivery loop can afford it.
What needs a query (webhooks out of order, due and leased triggers, RQ's queue) is read when
``/metrics`` is scraped (``ops/state.py``), never on the hot paths.

With ``PROMETHEUS_MULTIPROC_DIR`` set before a process starts, prometheus_client keeps these
values in files there, one set per process, and ``/metrics`` adds up those of every process of
the machine (gunicorn's workers and ``python -m workers`` alike). Without it each process
counts for itself, which is what tests and a single process need.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

# The _created series say when each process started counting; as multi-process mode, leave them out.
disable_created_metrics()

EVENTS_ACCEPTED = Counter(
    "webhookapp_events_accepted",
    "Events the event API accepted; duplicate=true: a client id seen before (answered 200, counted nothing).",
    ["duplicate"],
)
EVENTS_REFUSED = Counter("webhookapp_events_refused", "Events the event API refused, by reason.", ["reason"])
DELIVERIES = Counter(
    "webhookapp_deliveries", "Attempts of triggers recorded, by outcome (success: a 2xx answer in time).", ["outcome"]
)
DELIVERY_DURATION = Histogram(
    "webhookapp_delivery_duration_seconds",
    "Time from the start of an attempt to its last byte or its failure.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
RETRIES_SCHEDULED = Counter("webhookapp_retries_scheduled", "Failed attempts after which a retry was scheduled.")
WENT_OUT_OF_ORDER = Counter(
    "webhookapp_webhooks_went_out_of_order", "Webhooks that went Out of order after their last allowed failure."
)
DISABLED_GONE = Counter(
    "webhookapp_webhooks_disabled_gone", "Webhooks disabled because their handler answered 410 Gone."
)

# Refusals by the status they answer; anything else is named by its status.
REFUSAL_REASONS = {
    400: "invalid",
    401: "unauthenticated",
    404: "unknown_product",
    413: "too_large",
    415: "not_json",
}

# The children the hot paths use, bound once (a .labels() call costs a lookup and a lock), and
# present from the start at 0, so that rates and ratios work before the first of each.
ACCEPTED = EVENTS_ACCEPTED.labels(duplicate="false")
DUPLICATE = EVENTS_ACCEPTED.labels(duplicate="true")
SUCCEEDED = DELIVERIES.labels(outcome="success")
FAILED = DELIVERIES.labels(outcome="failure")
for _reason in REFUSAL_REASONS.values():
    EVENTS_REFUSED.labels(reason=_reason)


def event_refused(status: int) -> None:
    """Count an event refused with this HTTP status."""
    EVENTS_REFUSED.labels(reason=REFUSAL_REASONS.get(status, str(status))).inc()


def delivery_recorded(success: bool, duration_ms: float) -> None:
    """Count a recorded attempt of a trigger and its duration."""
    (SUCCEEDED if success else FAILED).inc()
    DELIVERY_DURATION.observe(duration_ms / 1000)
