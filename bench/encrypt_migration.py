"""Encryption benchmark: how long a database of ``bench.scale``'s size takes to have its secrets
encrypted by migration, and re-encrypted under a new key (docs/operations.md, "Upgrading").

    .venv/bin/python -m bench.encrypt_migration \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_crypto [--size 1]

The accounts, products and webhooks of :mod:`bench.scale_data` (``--size`` 1: 100,000 webhooks,
their plain secrets) are loaded at the last migration before encryption, without the attempts
and events, which the migrations do not touch. Then, each as the operator runs it (a ``flask``
process, its start included, and that start alone measured apart):

- ``flask db upgrade 0014``: the encrypted columns added and filled (0011), 1,000 rows per
  transaction, with the release's other additions (0012 to 0014);
- ``flask db upgrade``: 0015 checks every row against its plain column and drops the plain columns;
- ``flask secrets reencrypt`` with a new key put first: every secret rewritten;
- the same again: nothing left to rewrite, every row read and skipped.

The database's tables are dropped at the end (``--keep`` leaves them).
"""

from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy import text

from bench import scale_data
from bench.common import refuse_shared_database
from webhookapp.infra.config import INSTANCE_DIR
from webhookapp.infra.crypto import new_key

LOADED = ("accounts", "products", "webhooks", "the webhooks' search text", "users and the API token")


def timed(say_what: str, url: str, *args: str, **env: str) -> float:
    began = time.monotonic()
    result = scale_data.flask(url, *args, **env)
    seconds = time.monotonic() - began
    last = (result.stdout.strip().splitlines() or [""])[-1 if "reencrypt" not in args else 0]
    print(f"{say_what:<52} {seconds:6.1f} s  {last[:90]}", flush=True)
    return seconds


def run(args: argparse.Namespace) -> int:
    url = args.database_url
    refuse_shared_database(url)
    shape = scale_data.Shape.of_size(args.size)
    print(f"Loading {shape.webhooks:,} webhooks with plain secrets (revision {scale_data.PLAIN_SECRETS_REVISION})…")
    scale_data.load(url, args.size, steps=LOADED, upgrade=False, say=lambda line: print(line, flush=True))
    engine = scale_data.engine_for(url)
    try:
        start = timed("a flask command's start (at 0010: nothing to check)", url, "db", "current")
        timed("flask db upgrade 0014 (expand: add, fill)", url, "db", "upgrade", "0014")
        timed("flask db upgrade (0015, contract: reconcile, drop)", url, "db", "upgrade")
        checked = timed("a flask command's start (keys checked)", url, "db", "current")
        old = (INSTANCE_DIR / "encryption_key").read_text().strip()  # development's key, as the commands'

        keys = f"{new_key()},{old}"
        timed("flask secrets reencrypt (a new key first)", url, "secrets", "reencrypt", WEBHOOK_ENCRYPTION_KEYS=keys)
        timed("flask secrets reencrypt (again: all skipped)", url, "secrets", "reencrypt", WEBHOOK_ENCRYPTION_KEYS=keys)
        print(f"(each time includes a command's start: {start:.1f} s; with the start's key check {checked:.1f} s)")
        with engine.connect() as connection:
            size = connection.execute(text("SELECT pg_size_pretty(pg_table_size('webhooks'))")).scalar()
        print(f"webhooks table after: {size} (VACUUM FULL webhooks rewrites it without the dropped columns)")
    finally:
        if not args.keep:
            with engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL of a database of your own")
    parser.add_argument("--size", type=float, default=1.0, help="bench.scale's size (1: 100,000 webhooks)")
    parser.add_argument("--keep", action="store_true", help="leave the loaded tables in the database")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
