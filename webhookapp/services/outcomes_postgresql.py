"""Recording successes on PostgreSQL (DESIGN §6): a batch of attempts in one statement.

A busy worker records its successes in batches (:func:`.outcomes.complete_successes`). Sent
row by row, a batch costs the worker more Python than its sends do; as :data:`STATEMENT` the
rows travel as arrays, and one statement locks the webhooks (in id order, as every multi-row
writer does), inserts the attempts, counts the successes and releases the leases that are
still ours. A webhook deleted meanwhile is skipped: its attempt has nowhere to go.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from ..extensions import db
from .sender import AttemptResult, PreparedCall
from .triggers import Claim

STATEMENT = """
    WITH batch AS (
        SELECT * FROM unnest(
            %(webhook_ids)b::text[], %(leases)b::text[], %(numbers)b::int[],
            %(started)b::timestamp[], %(durations)b::float8[], %(methods)b::text[],
            %(urls)b::text[], %(request_headers)b::text[], %(request_bodies)b::text[],
            %(statuses)b::int[], %(response_headers)b::text[], %(response_bodies)b::text[],
            %(truncated)b::boolean[], %(info_durations)b::float8[], %(excerpts)b::text[]
        ) AS b(webhook_id, lease_id, number, started_at, duration_ms, method, url, request_headers, request_body,
               status, response_headers, response_body, truncated, info_duration, excerpt)
    ),
    locked AS MATERIALIZED (
        SELECT id FROM webhooks WHERE id IN (SELECT webhook_id FROM batch) ORDER BY id FOR UPDATE
    ),
    inserted AS (
        INSERT INTO attempts
            (webhook_id, kind, number, started_at, duration_ms, success, request_method, request_url,
             request_headers, request_body, response_status, response_headers, response_body, response_truncated)
        SELECT b.webhook_id, 'trigger', b.number, b.started_at, b.duration_ms, true, b.method, b.url,
               CAST(b.request_headers AS json), b.request_body, b.status, CAST(b.response_headers AS json),
               b.response_body, b.truncated
        FROM batch b JOIN locked ON locked.id = b.webhook_id
        RETURNING id, webhook_id
    ),
    counted AS (
        UPDATE webhooks w
        SET triggers_count = w.triggers_count + 1,
            success_count = w.success_count + 1,
            failures_since_last_success = 0,
            last_success_at = b.started_at,
            last_success_info = json_build_object(
                'status', b.status, 'duration_ms', b.info_duration, 'excerpt', b.excerpt, 'error', NULL,
                'attempt_id', inserted.id
            ),
            -- The lease is released only by the claim that holds it (see outcomes).
            lease_expires_at = CASE WHEN w.lease_id = b.lease_id THEN NULL ELSE w.lease_expires_at END,
            lease_attempt = CASE WHEN w.lease_id = b.lease_id THEN 0 ELSE w.lease_attempt END,
            lease_id = CASE WHEN w.lease_id = b.lease_id THEN NULL ELSE w.lease_id END
        FROM batch b JOIN inserted ON inserted.webhook_id = b.webhook_id
        WHERE w.id = b.webhook_id
        RETURNING w.id
    )
    SELECT count(*) FROM counted
"""


_COLUMNS = (
    "webhook_ids", "leases", "numbers", "started", "durations", "methods", "urls", "request_headers",
    "request_bodies", "statuses", "response_headers", "response_bodies", "truncated", "info_durations", "excerpts",
)  # fmt: skip


def complete_successes(items: list[tuple[Claim, PreparedCall, AttemptResult]]) -> int:
    """Record successful attempts of distinct webhooks and commit; returns how many were recorded."""
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for claim, call, result in items:
        columns["webhook_ids"].append(claim.webhook.id)
        columns["leases"].append(claim.lease_id)
        columns["numbers"].append(claim.attempt)
        columns["started"].append(result.started_at.astimezone(UTC).replace(tzinfo=None))  # naive UTC, as stored
        columns["durations"].append(result.duration_ms)
        columns["methods"].append(call.method)
        columns["urls"].append(call.url)
        columns["request_headers"].append(json.dumps(call.logged_headers))
        columns["request_bodies"].append(call.body.decode() if call.body is not None else None)
        columns["statuses"].append(result.status)
        columns["response_headers"].append(json.dumps(result.headers) if result.headers else None)
        columns["response_bodies"].append(result.body)
        columns["truncated"].append(result.truncated)
        columns["info_durations"].append(round(result.duration_ms, 1))
        columns["excerpts"].append(result.excerpt)
    # The session's own connection and transaction; parameters in binary, which arrays of JSON
    # and bodies need: in text they are escaped character by character.
    with db.session.connection().connection.driver_connection.cursor() as cursor:
        recorded = cursor.execute(STATEMENT, columns).fetchone()[0]
    db.session.commit()
    return recorded
