"""Secrets kept in table columns, stored encrypted (docs/security.md, "Secrets at rest").

A secret's associated data names its place, ``<table>.<column>:<row id>`` (for example
``webhooks.jwt_secret:WH-123-456-789``), so a ciphertext copied into another row or column does
not decrypt. The models read and write their secrets through :func:`seal` and :func:`unseal`
alone; a start checks that the key ring opens what is stored (:func:`check_stored_keys`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from webhookapp.infra import crypto

WEBHOOK_SECRETS = {"jwt_secret": "jwt_secret_encrypted", "jwt_secret_next": "jwt_secret_next_encrypted"}
"""A webhook's secrets: the name the code reads and the column that stores it encrypted."""

PLAIN_COLUMN = "jwt_secret"
"""The plain column of releases before encryption; it exists between migrations 0011 and 0015."""


def context(table: str, column: str, row_id: object) -> str:
    """The associated data of the secret in ``table.column`` of row ``row_id``."""
    return f"{table}.{column}:{row_id}"


def seal(plaintext: str, *, table: str, column: str, row_id: object) -> str:
    """The stored form of a secret, under the ring's first key."""
    if row_id is None:
        raise ValueError(f"{table}.{column}: the row needs its id before its secret is set")
    return crypto.current().encrypt(plaintext, context=context(table, column, row_id))


def unseal(stored: str, *, table: str, column: str, row_id: object) -> str:
    """The plain secret (cached by ciphertext); :class:`crypto.CryptoError` says why it cannot be read."""
    return crypto.current().decrypt(stored, context=context(table, column, row_id))


def webhook_secret(stored: str | None, webhook_id: str, column: str = "jwt_secret") -> str:
    """A webhook's plain secret from its stored form: what signing, the API and the pages read."""
    if stored is None:
        raise crypto.CryptoError(
            f"Webhook {webhook_id} has no encrypted {column} yet (written by the release before this "
            "one): `flask db upgrade` encrypts it once every process runs this release."
        )
    return unseal(stored, table="webhooks", column=column, row_id=webhook_id)


def has_plain_columns(connection: Connection) -> bool:
    """Whether the plain secret columns of the release before are still there (after migration
    0011, before 0015): new processes then write them too, so old workers still sign."""
    return has_webhooks_column(connection, PLAIN_COLUMN)


def has_webhooks_column(connection: Connection, name: str) -> bool:
    """Whether table ``webhooks`` exists with column ``name``: one catalog lookup (not the
    inspector's several), as every secret written and every start of a process asks."""
    if connection.dialect.name == "postgresql":
        query = ("SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('webhooks') AND attname = :name "
                 "AND NOT attisdropped")  # fmt: skip
    elif connection.dialect.name == "sqlite":
        query = "SELECT 1 FROM pragma_table_info('webhooks') WHERE name = :name"
    else:  # pragma: no cover - the two supported databases are above
        inspector = inspect(connection)
        columns = inspector.get_columns("webhooks") if inspector.has_table("webhooks") else []
        return name in {column["name"] for column in columns}
    return connection.execute(text(query), {"name": name}).first() is not None


def check_stored_keys(box: crypto.SecretBox, engine: Engine, *, timeout: float = 10.0) -> None:
    """Refuse to start when a stored webhook secret was made by a key the ring does not hold, or
    when a sample does not decrypt: a clear message at start rather than failures at every
    delivery. Nothing is checked before the tables exist (a fresh database, or before 0011).

    A database that does not answer within ``timeout`` seconds is not waited for (a connection
    can hang for minutes): the process starts, ``/readyz`` says the database is out, and the keys
    are checked at the next start."""
    found: list[tuple[tuple[str, str] | None, tuple[str, str] | None]] = []
    reader = threading.Thread(target=lambda: found.append(_stored_samples(box, engine)), name="key-check", daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        return
    row, sample = found[0]
    if row is not None:
        webhook_id, stored = row
        raise crypto.CryptoError(
            f"WEBHOOK_ENCRYPTION_KEYS does not hold key {box.missing_key(stored)}, which encrypted the "
            f"secrets of webhook {webhook_id} (and maybe others): add that key to the list (the first "
            "key encrypts, every key decrypts), then `flask secrets reencrypt` may move them to the new one."
        )
    if sample is not None:
        try:
            webhook_secret(sample[1], sample[0])
        except crypto.CryptoError as exc:
            raise crypto.CryptoError(f"The stored secret of webhook {sample[0]} does not decrypt: {exc}") from None


def _stored_samples(
    box: crypto.SecretBox, engine: Engine
) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """A webhook whose secret names a key outside the ring, and any stored secret (each None if
    there is none, or no database or table yet)."""
    try:
        with engine.connect() as connection:
            if not has_webhooks_column(connection, WEBHOOK_SECRETS["jwt_secret"]):
                return None, None
            row = _foreign_row(connection, box)
            sample = connection.execute(
                text("SELECT id, jwt_secret_encrypted FROM webhooks WHERE jwt_secret_encrypted IS NOT NULL LIMIT 1")
            ).first()
    except SQLAlchemyError:
        return None, None  # no database yet: the first request says so; keys are checked on the next start
    return row, (str(sample[0]), str(sample[1])) if sample is not None else None


def _foreign_row(connection: Connection, box: crypto.SecretBox) -> tuple[str, str] | None:
    """A webhook whose secret (current or next) names a key outside the ring, if any."""
    prefixes = {f"k{n}": f"{crypto.PREFIX}:{key.id}:" for n, key in enumerate(box.keys)}
    width = len(next(iter(prefixes.values())))
    known = ", ".join(f":{name}" for name in prefixes)
    row = connection.execute(
        text(
            f"SELECT id, CASE WHEN substr(jwt_secret_encrypted, 1, {width}) NOT IN ({known}) "
            "THEN jwt_secret_encrypted ELSE jwt_secret_next_encrypted END FROM webhooks "
            f"WHERE substr(jwt_secret_encrypted, 1, {width}) NOT IN ({known}) "
            f"OR substr(jwt_secret_next_encrypted, 1, {width}) NOT IN ({known}) LIMIT 1"
        ),
        prefixes,
    ).first()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True)
class SealedTable:
    """A table with secrets in columns of their own: ``columns`` maps the name in the context
    (``jwt_secret``) to the column that stores it (``jwt_secret_encrypted``)."""

    table: str
    key: str
    columns: dict[str, str]
    key_type: str = "text"  # the SQL type of ``key``, which a batch's JSON rows are cast to


SEALED_TABLES: tuple[SealedTable, ...] = (
    SealedTable("webhooks", "id", {**WEBHOOK_SECRETS, "tls_client_key": "tls_client_key_encrypted"}),
    # Two-factor seeds (services/two_factor.py), context "users.totp_secret:<id>".
    SealedTable("users", "id", {"totp_secret": "totp_secret"}, key_type="integer"),
)
"""Every secret column ``flask secrets reencrypt`` rewrites (the drafts' JSON aside)."""
