"""The SQL twins of two trigger transitions, for the PostgreSQL fast paths' single statements
(docs/architecture.md, "PostgreSQL fast paths").

The event API (:mod:`webhookapp.engine.ingest.postgresql`) and success recording
(:mod:`webhookapp.engine.outcomes.postgresql`) do their whole work in one statement each on
PostgreSQL, so the transitions they make are written here a second time, as CTEs, beside
:mod:`webhookapp.engine.triggers`, which owns the portable versions. A test
(``tests/unit/test_trigger_twins.py``) runs both on the same scenarios and checks they agree.
"""

from __future__ import annotations

from webhookapp.engine.triggers import RELEASED_LEASE


def count_events(*, how_many: str, last_event_at: str, api_url: str, traceparent: str) -> str:
    """Twin of :func:`.triggers.count_event`: a ``counted`` CTE that counts ``how_many`` events on
    the webhooks of a ``matched`` CTE (locked in id order) if a ``stored`` CTE stored any.

    Its rows say which triggers the events made due (``fresh``): the others' pending trigger
    absorbed them, and nobody need be woken. ``%(now)s`` is when the trigger falls due.
    """
    return f"""    counted AS (
        UPDATE webhooks
        SET events_count = events_count + {how_many}, last_event_at = {last_event_at},
            -- Doorbell: a pending trigger absorbs the event; otherwise one is due now.
            next_trigger_at = COALESCE(next_trigger_at, %(now)s), last_event_api_url = {api_url},
            -- The trace context of the event that makes the trigger due (NULL while tracing is off).
            trigger_traceparent = CASE WHEN next_trigger_at IS NULL THEN {traceparent} ELSE trigger_traceparent END
        WHERE id = ANY(ARRAY(SELECT id FROM matched)) AND EXISTS (SELECT 1 FROM stored)
        -- The trigger is the event's own (it was not pending before), so somebody must be woken.
        RETURNING id, next_trigger_at = %(now)s AND NOT out_of_order AS fresh
    )"""


COUNT_EVENT = count_events(how_many="1", last_event_at="%(now)s", api_url="%(api_url)s", traceparent="%(traceparent)s")
"""One event, whose time is ``%(now)s``, whose API URL is ``%(api_url)s`` and whose trace context
is ``%(traceparent)s``."""

COUNT_GROUP = count_events(
    how_many="(SELECT count(*) FROM stored)",
    last_event_at="(SELECT created_at FROM latest)",
    api_url="(SELECT api_url FROM latest)",
    # The first stored event's, as counting them one by one would keep: a pending trigger keeps its own.
    traceparent="(SELECT b.traceparent FROM batch b JOIN stored s ON s.id = b.event_id ORDER BY b.n LIMIT 1)",
)
"""A group of events: as many as were stored; the time and API URL of the ``latest`` CTE's, the
trace context of the first."""


def _release_if_ours(row: str, claim: str) -> str:
    """SET clauses that release the lease of webhook ``row`` if the claim ``claim`` still holds it:
    :data:`webhookapp.engine.triggers.RELEASED_LEASE` in SQL, the twin of the portable succeed's release."""
    return ",\n            ".join(
        f"{name} = CASE WHEN {row}.lease_id = {claim}.lease_id THEN {'NULL' if released is None else released} "
        f"ELSE {row}.{name} END"
        for name, released in RELEASED_LEASE.items()
    )


SUCCEED = f"""    counted AS (
        UPDATE webhooks w
        SET triggers_count = w.triggers_count + 1,
            success_count = w.success_count + 1,
            attempts_kept = w.attempts_kept + 1,
            failures_since_last_success = 0,
            last_success_at = b.started_at,
            last_success_info = json_build_object(
                'status', b.response_status, 'duration_ms', b.info_duration, 'excerpt', b.excerpt, 'error', NULL,
                'attempt_id', inserted.id
            ),
            -- The trigger is done (the next is a new message); the lease is released only by
            -- the claim that holds it.
            trigger_message_id = CASE WHEN w.lease_id = b.lease_id THEN NULL ELSE w.trigger_message_id END,
            trigger_serial = CASE WHEN w.lease_id = b.lease_id THEN w.trigger_serial + 1 ELSE w.trigger_serial END,
            {_release_if_ours("w", "b")}
        FROM batch b JOIN inserted ON inserted.webhook_id = b.webhook_id
        WHERE w.id = b.webhook_id
        RETURNING w.id
    )"""
"""Twin of :func:`.triggers.succeed`: a ``counted`` CTE that counts the successes of a ``batch``
CTE (``b``: ``webhook_id``, ``lease_id``, ``started_at``, ``response_status``, ``info_duration``,
``excerpt``) whose attempts an ``inserted`` CTE stored, and releases the leases still theirs."""
