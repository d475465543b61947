"""The production-sized data set of ``bench.scale``, loaded in SQL into a PostgreSQL database of
its own.

At ``size`` 1: 1,000 accounts; 100,000 webhooks, one account (:data:`BIG_ACCOUNT`) holding
20,000 of them on 50 products; 10 million attempts over 31 days, 100,000 of them on one webhook
(:data:`HEAVY_WEBHOOK`), interleaved with the others as a busy service writes them; 5 million
events, most posted with the platform's token (:data:`PLATFORM_ACCOUNT`), one in five by the
owner of the webhook it matched, and one in fifty matching ten webhooks of as many accounts
(their ``event_feeds`` rows and match sets in one statement each, as the backfills write
them); 800,000 audit entries, three per webhook and 500,000 more in the big account (1,000 of
them on the heavy webhook). Smaller sizes scale every count (the big account keeps its 50 products). The ids do
not depend on the size, so the same request names the same objects in a small and a big
database.

The schema comes from the migrations (``flask db upgrade``), so the indexes are the ones a real
installation has; the secondary indexes of the two big tables are dropped during the load and
built again after it, which is how a bulk load is done, then ``VACUUM ANALYZE`` leaves the
tables as autovacuum would.

SQL cannot encrypt the webhooks' secrets, so :data:`STEPS` load a database at
:data:`PLAIN_SECRETS_REVISION` (plain secrets) and ``flask db upgrade`` then takes it to the
last migration, encrypting them as it would an installation's (``bench.encrypt_migration``
times that). Rows of tables added after that revision go into :data:`LATER_STEPS`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import Engine
from werkzeug.security import generate_password_hash

from bench.common import ROOT, SECRET_KEY, refuse_shared_database
from webhookapp.engine import matches
from webhookapp.models.tenancy import digest

BIG_ACCOUNT = "VA-000001"
FED_ACCOUNT = "VA-000002"
"""An account whose events the platform posts (a fifth of them it posts itself)."""
PLATFORM_ACCOUNT = "DA-000001"
"""The platform: a distributor whose platform token posts most events."""
MANY_WEBHOOKS = 10
"""Webhooks (of as many accounts) that one event in fifty matches."""
HEAVY_WEBHOOK = "WH-000000001"
BIG_PRODUCTS = 50
EMAIL = "scale@example.com"
PASSWORD = "bench-password"
PLAIN_TOKEN = "bench-scale-token-0123456789abcdef0123456789abcdef"
FED_TOKEN = "bench-scale-fed-0123456789abcdef0123456789abcdef01"
PLATFORM_TOKEN = "bench-scale-platform-0123456789abcdef0123456789ab"
DAYS = 31
BULK_TABLES = ("attempts", "events", "audit_entries")
AUDIT_PER_WEBHOOK = 3
AUDIT_ACTIONS = ("webhook.updated", "webhook.created", "webhook.disabled", "webhook.enabled", "webhook.secret_revealed")
PLAIN_SECRETS_REVISION = "0010"  # the last migration before the secrets were stored encrypted


@dataclass(frozen=True)
class Shape:
    accounts: int
    webhooks: int
    big_webhooks: int
    attempts: int
    heavy_attempts: int
    events: int
    audit_heavy: int  # the big account's audit entries beyond three per webhook

    @property
    def audit_entries(self) -> int:
        return self.webhooks * AUDIT_PER_WEBHOOK + self.audit_heavy

    @classmethod
    def of_size(cls, size: float) -> Shape:
        def scaled(count: int, least: int) -> int:
            return max(least, round(count * size))

        return cls(
            accounts=scaled(1_000, 2),
            webhooks=scaled(100_000, 100),
            big_webhooks=scaled(20_000, 50),
            attempts=scaled(10_000_000, 1_000),
            heavy_attempts=scaled(100_000, 100),
            events=scaled(5_000_000, 100),
            audit_heavy=scaled(500_000, 500),
        )


def webhook_id(k: str) -> str:
    return f"'WH-' || lpad(({k})::text, 9, '0')"


def product_of_account(account: str, choice: str) -> str:
    """The product number of account number ``account`` (2 and up): two each, after the big ones."""
    return f"({BIG_PRODUCTS} + (({account}) - 2) * 2 + 1 + ({choice}) % 2)"


# One statement per table; :name parameters come from the Shape and the load's clock.
STEPS: tuple[tuple[str, str], ...] = (
    (
        "accounts",
        """INSERT INTO accounts (id, name, kind, created_at)
        SELECT 'VA-' || lpad(a::text, 6, '0'), 'Account ' || a, 'vendor', :start
        FROM generate_series(1, :accounts) AS a;
        INSERT INTO accounts (id, name, kind, created_at) VALUES (:platform, 'The platform', 'distributor', :start)""",
    ),
    (
        "products",
        f"""INSERT INTO products (id, name, vendor_id, dynamic_validation, created_at)
        SELECT 'PRD-' || lpad(p::text, 9, '0'), 'Product ' || p,
               'VA-' || lpad((CASE WHEN p <= {BIG_PRODUCTS} THEN 1
                                   ELSE 2 + (p - {BIG_PRODUCTS} - 1) / 2 END)::text, 6, '0'),
               false, :start
        FROM generate_series(1, {BIG_PRODUCTS} + (:accounts - 1) * 2) AS p""",
    ),
    (
        "webhooks",
        f"""INSERT INTO webhooks (id, account_id, product_id, label, description, active, out_of_order,
            object_class, type, http_method, external_url, jwt_secret, headers, data, created_at, modified_at,
            events_count, triggers_count, success_count, failure_count, failures_since_last_success,
            trigger_attempts, lease_attempt, last_event_at, next_trigger_at)
        SELECT {webhook_id("k")}, 'VA-' || lpad(owner::text, 6, '0'),
               'PRD-' || lpad((CASE WHEN owner = 1 THEN 1 + (k - 1) % {BIG_PRODUCTS}
                                    ELSE {product_of_account("owner", "k")} END)::text, 9, '0'),
               'Hook ' || k || ' of ' || owner, '', k % 20 <> 0, k % 50 = 25,
               (ARRAY['fulfillment_request', 'billing_request', 'listing_request'])[1 + k % 3], 'event', 'POST',
               'https://handler.example.com/hooks/' || k, md5(k::text), '{{}}', '{{}}',
               :now - (:webhooks - k) * interval '5 minutes', :now - (:webhooks - k) * interval '5 minutes',
               1000, 1000, 950, 50, CASE WHEN k % 100 = 7 THEN 2 ELSE 0 END,
               CASE WHEN k % 100 = 7 THEN 2 ELSE 0 END, 0, :now - interval '1 hour',
               CASE WHEN k % 100 = 7 THEN :now + interval '1 hour' END
        FROM (SELECT k, CASE WHEN k <= :big_webhooks THEN 1
                             ELSE 2 + (k - :big_webhooks - 1) % (:accounts - 1) END AS owner
              FROM generate_series(1, :webhooks) AS k) AS numbered""",
    ),
    (
        "the webhooks' search text",
        "INSERT INTO webhook_search SELECT id, account_id, label || ' ' || id || ' ' || external_url FROM webhooks",
    ),
    (
        "users and the API token",
        """INSERT INTO users (email, name, password_hash, is_admin, account_id, created_at, session_token)
        VALUES (:email, 'Scale User', :password_hash, false, :big_account, :start, '0123456789abcdef0123456789abcdef');
        INSERT INTO api_tokens (account_id, name, token_hash, prefix, is_platform, created_at)
        VALUES (:big_account, 'scale', :token_hash, :token_prefix, false, :start);
        INSERT INTO api_tokens (account_id, name, token_hash, prefix, is_platform, created_at)
        VALUES (:fed_account, 'scale', :fed_hash, :fed_prefix, false, :start);
        INSERT INTO api_tokens (account_id, name, token_hash, prefix, is_platform, created_at)
        VALUES (:platform, 'platform', :platform_hash, :platform_prefix, true, :start)""",
    ),
    (
        "attempts",
        # Every (attempts / heavy_attempts)-th attempt is the heavy webhook's; the others go round
        # the rest. One in twenty fails, spread by a multiplicative hash.
        f"""INSERT INTO attempts (id, webhook_id, kind, number, started_at, duration_ms, success, request_method,
            request_url, request_headers, request_body, response_status, response_headers, response_body,
            response_truncated, error)
        SELECT i, CASE WHEN i % :stride = 0 THEN :heavy ELSE {webhook_id("2 + (i * 7919) % (:webhooks - 1)")} END,
               'trigger', 1, :start + i * :step * interval '1 second', 20 + i % 300, NOT failed, 'POST',
               'https://handler.example.com/hooks/' || i % 1000,
               '{{"Content-Type": "application/json", "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.<redacted>"}}',
               '{{"id": "EV-' || i || '", "object_class": "fulfillment_request", "api_url": "https://api.example.com/public/v1/"}}',
               CASE WHEN failed THEN 503 ELSE 200 END, '{{"Content-Type": "application/json"}}',
               CASE WHEN failed THEN 'Service Unavailable' ELSE '{{"ok": true}}' END, false,
               CASE WHEN failed THEN 'HTTP 503' END
        FROM (SELECT i, (i * 2654435761) % 4294967296 % 20 = 3 AS failed
              FROM generate_series(1::bigint, :attempts) AS i) AS numbered""",
    ),
    (
        "events",
        f"""INSERT INTO events (id, account_id, client_event_id, object_class, product_id, object_id, api_url,
            webhook_ids, created_at)
        SELECT 'EV-' || lpad(e::text, 12, '0'), CASE WHEN e % 5 = 1 THEN w.account_id ELSE :platform END,
               CASE WHEN e % 2 = 0 THEN 'client-' || e END,
               w.object_class, w.product_id, 'PR-' || e, 'https://api.example.com/public/v1/',
               CASE WHEN e % 50 = 0 THEN json_build_array(w.id, {", ".join(
                   webhook_id(f"1 + (e * 7919 + {n} * 1009) % :webhooks") for n in range(1, MANY_WEBHOOKS))})
                    ELSE json_build_array(w.id) END,
               :start + e * :event_step * interval '1 second'
        FROM generate_series(1::bigint, :events) AS e
        JOIN webhooks w ON w.id = {webhook_id("1 + (e * 7919) % :webhooks")}""",
    ),
)


SET_DIGEST = f"SELECT {matches.DIGEST_SQL} FROM json_array_elements_text(e.webhook_ids) AS listed(id)"
"""The digest of an event ``e``'s set of webhooks, as the ingest statement computes it."""

LATER_STEPS: tuple[tuple[str, str], ...] = (
    (
        "audit entries",
        # The first audit_heavy entries are the big account's (every 500th on the heavy webhook),
        # the rest three per webhook; all interleaved in time over the 31 days, a fifth of them
        # updates with their changes.
        f"""INSERT INTO audit_entries (account_id, at, actor_kind, actor_label, actor_user_id, actor_token_id,
            action, object_type, object_id, object_label, address, user_agent, changes)
        SELECT w.account_id, :start + ((n * 7919) % :audit_entries) * :audit_step * interval '1 second',
               CASE WHEN n % 3 = 0 THEN 'token' ELSE 'user' END,
               CASE WHEN n % 3 = 0 THEN 'scale (' || :token_prefix || '…)' ELSE :email END,
               NULL, NULL, (ARRAY{list(AUDIT_ACTIONS)})[1 + n % {len(AUDIT_ACTIONS)}], 'webhook', w.id, w.label,
               '203.0.113.' || n % 250, 'Mozilla/5.0 (X11, Linux x86_64) bench/1',
               CASE WHEN n % {len(AUDIT_ACTIONS)} = 0
                    THEN json_build_object('label', json_build_object('before', 'Hook', 'after', w.label)) END
        FROM generate_series(1::bigint, :audit_entries) AS n
        JOIN webhooks w ON w.id = CASE
            WHEN n <= :audit_heavy AND n % 500 = 0 THEN :heavy
            WHEN n <= :audit_heavy THEN {webhook_id("1 + (n * 7919) % :big_webhooks")}
            ELSE {webhook_id("1 + n % :webhooks")} END""",
    ),
)
"""Statements for tables the migrations after :data:`PLAIN_SECRETS_REVISION` add, run at the last one."""
LATER_STEPS += (
    (
        "event feeds",
        # What ``flask events backfill-feeds`` writes, in one statement: a row per other account matched.
        """INSERT INTO event_feeds (account_id, created_at, event_id)
        SELECT DISTINCT w.account_id, e.created_at, e.id
        FROM events e CROSS JOIN LATERAL json_array_elements_text(e.webhook_ids) AS listed(webhook_id)
        JOIN webhooks w ON w.id = listed.webhook_id
        WHERE w.account_id <> e.account_id""",
    ),
    (
        "match sets",
        # What ``flask events backfill-matches`` does, in three statements: a set per distinct list
        # of webhooks, each event's set, and the sets' members.
        f"""INSERT INTO match_sets (digest)
        SELECT DISTINCT digest FROM (SELECT ({SET_DIGEST}) AS digest FROM events e) AS listed WHERE digest IS NOT NULL;
        UPDATE events e SET match_set_id = s.id FROM match_sets s WHERE s.digest = ({SET_DIGEST});
        INSERT INTO match_set_webhooks (webhook_id, set_id)
        SELECT DISTINCT listed.id, e.match_set_id
        FROM events e CROSS JOIN LATERAL json_array_elements_text(e.webhook_ids) AS listed(id)
        WHERE e.match_set_id IS NOT NULL;
        UPDATE backfills SET done = true WHERE name = 'event_matches'""",
    ),
    (
        "attempt counts",
        # What ``flask attempts backfill-counts`` writes, in one statement: each webhook's attempts.
        """UPDATE webhooks w SET attempts_kept = coalesce(
            (SELECT count(*) FROM attempts a WHERE a.webhook_id = w.id), 0)""",
    ),
)


def engine_for(url: str) -> Engine:
    refuse_shared_database(url)
    return create_engine(url, hide_parameters=True)


def flask(url: str, *args: str, app_root: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """``flask --app wsgi ARGS`` of the code in ``app_root`` on ``url`` (development: the key of
    ``instance/encryption_key``, unless ``WEBHOOK_ENCRYPTION_KEYS`` is given)."""
    environ = dict(os.environ, DATABASE_URL=url, SECRET_KEY=SECRET_KEY, WEBHOOKAPP_CONFIG="development", **env)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=app_root, env=environ, check=True, capture_output=True, text=True,
    )  # fmt: skip


def migrate(url: str, app_root: Path = ROOT, revision: str = "head") -> None:
    """The schema of the code in ``app_root``, as ``flask db upgrade`` makes it."""
    flask(url, "db", "upgrade", revision, app_root=app_root)


def _secondary_indexes(connection: Connection) -> list[tuple[str, str]]:
    rows = connection.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(:tables) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ),
        {"tables": list(BULK_TABLES)},
    ).all()
    return [(row.indexname, row.indexdef) for row in rows]


def load(
    url: str, size: float, app_root: Path = ROOT, say=print, steps: tuple[str, ...] | None = None, upgrade: bool = True
) -> Shape:
    """Empty the database at ``url``, migrate it and load the data set of ``size`` (the ``steps``
    named, default all); ``upgrade=False`` leaves it at :data:`PLAIN_SECRETS_REVISION`."""
    shape = Shape.of_size(size)
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(url, app_root, PLAIN_SECRETS_REVISION)
    now = time.time()
    params = {
        **shape.__dict__,
        "audit_entries": shape.audit_entries,
        "audit_step": DAYS * 86400 / shape.audit_entries,
        "now": _timestamp(now),
        "start": _timestamp(now - DAYS * 86400),
        "step": DAYS * 86400 / shape.attempts,
        "event_step": DAYS * 86400 / shape.events,
        "stride": max(shape.attempts // shape.heavy_attempts, 1),
        "heavy": HEAVY_WEBHOOK,
        "big_account": BIG_ACCOUNT,
        "email": EMAIL,
        "password_hash": generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
        "token_hash": digest(PLAIN_TOKEN),
        "token_prefix": PLAIN_TOKEN[:8],
        "platform": PLATFORM_ACCOUNT,
        "fed_account": FED_ACCOUNT,
        "fed_hash": digest(FED_TOKEN),
        "fed_prefix": FED_TOKEN[:8],
        "platform_hash": digest(PLATFORM_TOKEN),
        "platform_prefix": PLATFORM_TOKEN[:8],
    }
    with engine.begin() as connection:
        indexes = _secondary_indexes(connection)
        for name, _definition in indexes:
            connection.execute(text(f'DROP INDEX "{name}"'))
        for what, statement in STEPS:
            if steps is not None and what not in steps:
                continue
            began = time.monotonic()
            for part in statement.split(";"):
                connection.execute(text(part), params)
            say(f"  {what}: {time.monotonic() - began:.0f} s")
        began = time.monotonic()
        for _name, definition in indexes:
            connection.execute(text(definition))
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('attempts', 'id'), (SELECT max(id) FROM attempts))")
        )
        connection.execute(text("CREATE TABLE bench_scale (size float8 NOT NULL)"))
        connection.execute(text("INSERT INTO bench_scale VALUES (:size)"), {"size": size})
        say(f"  indexes: {time.monotonic() - began:.0f} s")
    if upgrade:
        began = time.monotonic()
        migrate(url, app_root)  # the secrets encrypted, as an installation's are by the upgrade
        with engine.begin() as connection:
            for what, statement in LATER_STEPS:
                if steps is not None and what not in steps:
                    continue
                for part in statement.split(";"):
                    connection.execute(text(part), params)
        say(f"  the last migrations: {time.monotonic() - began:.0f} s")

    vacuum(engine)
    engine.dispose()
    return shape


def vacuum(engine: Engine) -> None:
    """What autovacuum would have done (it is off on this server): visibility map and statistics."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def loaded_size(url: str) -> float | None:
    """The size loaded into ``url`` by :func:`load`, or None if it holds no complete load."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT size FROM bench_scale")).scalar()
    except Exception:  # no such table: never loaded, or the load was interrupted
        return None
    finally:
        engine.dispose()


def _timestamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)  # naive UTC, as the columns hold it
