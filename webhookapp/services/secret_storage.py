"""Re-encryption of the stored secrets under the ring's first key (docs/security.md, "Secrets at
rest", and docs/operations.md, "Encryption keys"): what ``flask secrets reencrypt`` runs.

Rows are read in id order, ``batch_size`` at a time, each batch rewritten and committed in its
own short transaction, so a table of 100,000 webhooks is never locked for long and the
delivery engine keeps going meanwhile. A row is rewritten only if it still holds what was read
(a secret changed meanwhile is already under the first key), and a row already under the first
key is skipped, so the command can be stopped and run again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import column, select, table, text

from webhookapp.infra import crypto
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db
from webhookapp.models import WizardDraft, secret_columns
from webhookapp.models.webhook import DRAFT_SECRETS

BATCH_SIZE = 1000


@dataclass
class Reencrypted:
    """What a run did: rows whose secrets were rewritten, per table, and rows already under the key."""

    key_id: str
    rewritten: dict[str, int] = field(default_factory=dict)
    already: int = 0

    @property
    def total(self) -> int:
        return sum(self.rewritten.values())


def reencrypt(batch_size: int = BATCH_SIZE, progress: Callable[[str], None] | None = None) -> Reencrypted:
    """Rewrite every stored secret not made by the first key; returns the counts."""
    box = crypto.current()
    done = Reencrypted(box.current_key_id)
    for sealed in secret_columns.SEALED_TABLES:
        done.rewritten[sealed.table] = _reencrypt_table(box, sealed, batch_size, done, progress)
    done.rewritten["wizard_drafts"] = _reencrypt_drafts(box, batch_size, done)
    return done


def _reencrypt_table(
    box: crypto.SecretBox,
    sealed: secret_columns.SealedTable,
    batch_size: int,
    done: Reencrypted,
    progress: Callable[[str], None] | None,
) -> int:
    stored_columns = list(sealed.columns.values())
    rows_table = table(sealed.table, column(sealed.key), *(column(name) for name in stored_columns))
    key = rows_table.c[sealed.key]
    rewritten = 0
    after: object = None
    while True:
        query = select(key, *(rows_table.c[name] for name in stored_columns)).order_by(key).limit(batch_size)
        if after is not None:
            query = query.where(key > after)
        rows = db.session.execute(query).all()
        if not rows:
            db.session.commit()
            return rewritten
        changes = []
        for row in rows:
            values = dict(zip(stored_columns, row[1:], strict=True))
            if all(value is None for value in values.values()):
                continue  # no secret in this row (a user without two-factor login)
            new = dict(values)
            for context_column, name in sealed.columns.items():
                value = values[name]
                if value is None:
                    continue
                if not box.needs_reencryption(value):
                    continue
                where = secret_columns.context(sealed.table, context_column, row[0])
                new[name] = box.encrypt(box.decrypt(value, context=where), context=where)
            if new == values:
                done.already += 1
            else:
                changes.append([row[0], *values.values(), *new.values()])
        if changes:
            rewritten += _rewrite(sealed, stored_columns, changes)
        db.session.commit()  # one short transaction per batch
        after = rows[-1][0]
        if progress is not None:
            progress(f"{sealed.table}: {rewritten} rewritten, up to {after}")


def _rewrite(sealed: secret_columns.SealedTable, stored_columns: list[str], changes: list[list[Any]]) -> int:
    """One UPDATE for a batch, its rows (key, the old values, the new ones) in one JSON parameter
    (:func:`json_rows`); a row is rewritten only if it still holds the old values (compare and
    set), else it was changed meanwhile, and so under the first key already."""
    width = len(stored_columns)
    dialect = db.engine.dialect.name
    same = "IS" if dialect == "sqlite" else "IS NOT DISTINCT FROM"
    assignments = ", ".join(f"{name} = batch.v{1 + width + k}" for k, name in enumerate(stored_columns))
    unchanged = " AND ".join(f"{sealed.table}.{name} {same} batch.v{1 + k}" for k, name in enumerate(stored_columns))
    statement = text(
        f"UPDATE {sealed.table} SET {assignments} FROM {json_rows(dialect, 1 + 2 * width)} "
        f"WHERE {sealed.table}.{sealed.key} = CAST(batch.v0 AS {sealed.key_type}) AND {unchanged}"
    )
    return rowcount(db.session.execute(statement, {"batch": json.dumps(changes)}))


def json_rows(dialect: str, width: int) -> str:
    """A FROM item of the rows of the JSON array of arrays ``:batch``, as columns v0, v1, …: a
    whole batch in one parameter, which both databases read fast (1,000 rows bound one by one
    cost more than the update itself)."""
    if dialect == "postgresql":
        picks = ", ".join(f"value->>{k} AS v{k}" for k in range(width))
        return f"(SELECT {picks} FROM json_array_elements(CAST(:batch AS json))) AS batch"
    picks = ", ".join(f"json_extract(value, '$[{k}]') AS v{k}" for k in range(width))
    return f"(SELECT {picks} FROM json_each(:batch)) AS batch"


def _reencrypt_drafts(box: crypto.SecretBox, batch_size: int, done: Reencrypted) -> int:
    """Drafts live two days and are few: the model rewrites each through its ``data``."""
    rewritten = 0
    after = ""
    while True:
        drafts = db.session.scalars(
            select(WizardDraft).where(WizardDraft.id > after).order_by(WizardDraft.id).limit(batch_size)
        ).all()
        if not drafts:
            return rewritten
        for draft in drafts:
            sealed = [value for name in DRAFT_SECRETS if (value := (draft.stored_data or {}).get(f"{name}_encrypted"))]
            if not sealed:
                continue
            if any(box.needs_reencryption(stored) for stored in sealed):
                draft.data = draft.data  # decrypted, then sealed under the first key
                rewritten += 1
            else:
                done.already += 1
        after = drafts[-1].id
        db.session.commit()
