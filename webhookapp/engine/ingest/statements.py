"""The SQL of the event ingest on PostgreSQL (:mod:`.ingest.postgresql` runs it): one statement
per event (:data:`STATEMENT`), or per group of events that match the same webhooks
(:data:`GROUP_STATEMENT`), each with a twin without the feed rows for a token known not to be a
platform's; and :data:`MAKE_SET`, run before the statement again when an event is the first of a
new match set (docs/architecture.md, "Following events").
"""

from __future__ import annotations

from webhookapp.engine.triggers.postgresql import COUNT_EVENT, COUNT_GROUP
from webhookapp.models.tenancy import USABLE_PRODUCT_SQL, USABLE_TOKEN_SQL

_MATCHES = f"""
    WITH token AS (
        SELECT t.id, t.account_id, t.is_platform, a.kind = %(vendor)s AND NOT t.is_platform AS vendor_only
        FROM api_tokens t JOIN accounts a ON a.id = t.account_id
        WHERE {USABLE_TOKEN_SQL}
    ),
    used AS (
        UPDATE api_tokens SET last_used_at = %(now)s, last_used_address = %(address)s
        WHERE id = (SELECT id FROM token) AND (last_used_at IS NULL OR last_used_at < %(used_before)s)
    ),
    matched AS MATERIALIZED (
        SELECT w.id, w.account_id FROM webhooks w, token
        WHERE w.product_id = %(product_id)s AND w.object_class = %(object_class)s AND w.type = 'event'
          AND w.active AND (token.is_platform OR w.account_id = token.account_id)
        ORDER BY w.id
        FOR UPDATE OF w
    ),
    known AS (
        SELECT EXISTS (SELECT 1 FROM matched) OR EXISTS (
            SELECT 1 FROM products p, token
            WHERE p.id = %(product_id)s AND {USABLE_PRODUCT_SQL}
        ) AS found
    ),
    named AS (
        -- The list of webhooks it matched, and their match set if one is made already.
        SELECT listed.ids, (SELECT s.id FROM match_sets s WHERE s.digest = md5(listed.ids::text)) AS set_id
        FROM (SELECT COALESCE(json_agg(id ORDER BY id COLLATE "C"), '[]'::json) AS ids FROM matched) AS listed
    ),
"""
"""The token, its use noted, the matching webhooks locked in id order, and whether the product is
the token's to see: the same for one event or a group. ``matched`` is the twin of the webhooks
:func:`.triggers.count_event` matches, written against the ``token`` CTE so that the token is
checked by the same statement; ``tests/unit/test_trigger_twins.py`` checks that both select alike.
``named`` is the event's list of webhooks (sorted by code point) and the id of their match set,
NULL if no event matched that set before (:data:`MAKE_SET` makes it)."""

_FED = """    fed AS (
        -- The other accounts whose webhooks it matched: only a platform token's event has any.
        SELECT DISTINCT m.account_id FROM matched m, token WHERE m.account_id <> token.account_id
    ),
"""

_STORABLE = "known.found AND (named.set_id IS NOT NULL OR json_array_length(named.ids) = 0)"
"""An event is stored only with its match set (none if it matched no webhook)."""

_OUTCOME = """(SELECT found FROM known) AS found, (SELECT webhook_ids FROM stored) AS webhook_ids,
           (SELECT json_agg(id) FROM counted WHERE fresh) AS fresh_ids,
           (SELECT set_id IS NULL AND json_array_length(ids) > 0 FROM named) AS set_missing, token.is_platform"""


def _statement(feeds: bool) -> str:
    """One event: with the ``feeds`` CTE (a platform token's event, or a token not known yet)
    or without it (a token known not to be a platform's, whose events have no feed rows)."""
    fed = (
        _FED
        + """    feeds AS (
        INSERT INTO event_feeds (account_id, created_at, event_id)
        SELECT fed.account_id, %(now)s, stored.id FROM fed, stored
    ),
"""
        if feeds
        else ""
    )
    return (
        _MATCHES
        + f"""    stored AS (
        INSERT INTO events
            (id, account_id, client_event_id, object_class, product_id, object_id, api_url, webhook_ids,
             match_set_id, created_at, traceparent)
        SELECT %(event_id)s, token.account_id, %(client_id)s, %(object_class)s, %(product_id)s, %(object_id)s,
               %(api_url)s, named.ids, named.set_id, %(now)s, %(traceparent)s
        FROM token, known, named WHERE {_STORABLE}
        ON CONFLICT (account_id, client_event_id) DO NOTHING
        RETURNING id, webhook_ids
    ),
{fed}{COUNT_EVENT}
    SELECT token.account_id, {_OUTCOME}
    FROM (SELECT 1) AS one LEFT JOIN token ON true
"""
    )


STATEMENT = _statement(feeds=True)
VENDOR_STATEMENT = _statement(feeds=False)

_GROUP_FEEDS = """    feeds AS (  -- every event of the group's feed rows, by this one statement
        INSERT INTO event_feeds (account_id, created_at, event_id)
        SELECT fed.account_id, b.created_at, s.id FROM fed, stored s JOIN batch b ON b.event_id = s.id
    ),
"""


def _group_statement(feeds: bool) -> str:
    """A group of events: :func:`_statement`'s twin over arrays."""
    fed = _FED + _GROUP_FEEDS if feeds else ""
    return (
        _MATCHES
        + f"""    batch AS (
        SELECT * FROM unnest(%(event_ids)s::text[], %(client_ids)s::text[], %(object_ids)s::text[],
                             %(api_urls)s::text[], %(created)s::timestamp[], %(traceparents)s::text[])
            WITH ORDINALITY AS b(event_id, client_id, object_id, api_url, created_at, traceparent, n)
    ),
    stored AS (
        -- In arrival order: of two events with one client id, the first goes in, the second is its duplicate.
        INSERT INTO events
            (id, account_id, client_event_id, object_class, product_id, object_id, api_url, webhook_ids,
             match_set_id, created_at, traceparent)
        SELECT b.event_id, token.account_id, b.client_id, %(object_class)s, %(product_id)s, b.object_id, b.api_url,
               named.ids, named.set_id, b.created_at, b.traceparent
        FROM batch b, token, known, named WHERE {_STORABLE}
        ORDER BY b.n
        ON CONFLICT (account_id, client_event_id) DO NOTHING
        RETURNING id, webhook_ids
    ),
    latest AS (
        SELECT b.api_url, b.created_at FROM batch b JOIN stored s ON s.id = b.event_id ORDER BY b.n DESC LIMIT 1
    ),
{fed}{COUNT_GROUP}
    SELECT token.account_id, (SELECT found FROM known) AS found, s.webhook_ids,
           (SELECT json_agg(id) FROM counted WHERE fresh) AS fresh_ids,
           (SELECT set_id IS NULL AND json_array_length(ids) > 0 FROM named) AS set_missing, token.is_platform
    FROM batch b LEFT JOIN token ON true LEFT JOIN stored s ON s.id = b.event_id
    ORDER BY b.n
"""
    )


GROUP_STATEMENT = _group_statement(feeds=True)
"""One statement for a group of events with the same token, product and object class: a row per
event, in order. Every event of the group reports the triggers the group made due."""
VENDOR_GROUP_STATEMENT = _group_statement(feeds=False)


MAKE_SET = (
    _MATCHES
    + """    made AS (
        -- A no-op update where another statement made it meanwhile, so that its id is returned.
        INSERT INTO match_sets (digest) SELECT md5(ids::text) FROM named WHERE json_array_length(ids) > 0
        ON CONFLICT (digest) DO UPDATE SET digest = EXCLUDED.digest
        RETURNING id
    )
    INSERT INTO match_set_webhooks (webhook_id, set_id) SELECT m.id, made.id FROM matched m, made
    ON CONFLICT DO NOTHING
"""
)
"""Make the match set of the webhooks an event would match now, with its members: run when the
ingest statement found none (the first event of a new set), before running it again. A set never
changes, so the ingest statement itself only looks its set up."""
