"""A clean schema for every test, without building it for every test.

On SQLite each test has a fresh file, and the tables are made for it. On PostgreSQL every test
shares ``TEST_DATABASE_URL``; dropping and creating two dozen tables with their indexes took a
few tenths of a second per test, most of the suite's time there. So a test's end deletes the
rows and restarts the sequences instead (:func:`empty`), and the next test reuses the tables
when the catalogue still reads as that clean schema left it (:func:`prepare`): a test that
migrated, dropped or altered anything changes the fingerprint, and the tables are made again.
"""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, text

# Tables with their columns, storage options and indexes: what a test may have changed.
FINGERPRINT = text(
    """
    SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
        SELECT indexdef AS item FROM pg_indexes WHERE schemaname = current_schema()
        UNION ALL
        SELECT c.relname || ':' || c.relkind::text || ':' || coalesce(array_to_string(c.reloptions, ';'), '') || ':'
               || coalesce(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text, '')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    ) AS catalogue
    """
)
RESTART_SEQUENCES = text(
    """
    DO $$ DECLARE s record; BEGIN
        FOR s IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP
            EXECUTE format('ALTER SEQUENCE %I RESTART', s.sequencename);
        END LOOP;
    END $$
    """
)

_clean: dict[str, str] = {}  # database URL → fingerprint of the empty schema a test left there


def prepare(db: SQLAlchemy) -> None:
    """Empty tables of the models for a test, in the app context of ``db``."""
    engine = db.engine
    if engine.dialect.name != "postgresql":
        db.drop_all()
        db.create_all()
        return
    key = engine.url.render_as_string(hide_password=False)
    expected = _clean.pop(key, None)
    if expected is not None and expected == _fingerprint(engine):
        return
    db.drop_all()
    db.create_all()


def empty(db: SQLAlchemy) -> None:
    """End a test's use of the database: on PostgreSQL delete every row and restart the sequences
    (the tables stay for the next test), elsewhere drop the tables."""
    engine = db.engine
    db.session.remove()
    if engine.dialect.name != "postgresql":
        db.drop_all()
        return
    try:
        with engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
            connection.execute(RESTART_SEQUENCES)
    except Exception:  # whatever the test left (a table gone, a lock): the next one builds anew
        db.drop_all()
        return
    _clean[engine.url.render_as_string(hide_password=False)] = _fingerprint(engine)


def _fingerprint(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.scalar(FINGERPRINT))
