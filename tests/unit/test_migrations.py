"""Flask-Migrate: ``db upgrade`` builds the schema on a fresh database and matches the models.

SQLite only: under ``TEST_DATABASE_URL`` the shared PostgreSQL database belongs to the ``app``
fixture, which builds it with ``create_all``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import create_engine, inspect

from webhookapp import create_app
from webhookapp.infra.extensions import db

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="migrations are checked on a fresh SQLite file"
)


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """Alembic's env.py calls logging.config.fileConfig; undo it for the tests that follow."""
    manager = logging.Logger.manager
    saved = {name: (lg.level, lg.disabled, list(lg.handlers), lg.propagate) for name, lg in manager.loggerDict.items()
             if isinstance(lg, logging.Logger)}  # fmt: skip
    root = (logging.root.level, list(logging.root.handlers))
    yield
    for name, (level, disabled, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.disabled, logger.handlers, logger.propagate = disabled, handlers, propagate
    logging.root.setLevel(root[0])
    logging.root.handlers = root[1]


@pytest.fixture
def fresh_app(tmp_path) -> Iterator[Flask]:
    """An app on a new, empty SQLite file (no app context held open)."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrated.sqlite'}"})
    yield app
    with app.app_context():
        db.engine.dispose()


def tables(app: Flask) -> set[str]:
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_and_check_finds_no_difference(fresh_app):
    """Runs under warnings-as-errors, so env.py may not use deprecated Flask-SQLAlchemy calls either."""
    runner = fresh_app.test_cli_runner()
    assert tables(fresh_app) == set()

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with fresh_app.app_context():
        expected = set(db.metadata.tables)
    assert tables(fresh_app) == expected | {"alembic_version"}
    assert {"accounts", "users", "products", "api_tokens", "webhooks", "wizard_drafts"} <= expected

    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_check_fails_on_a_database_that_is_not_migrated(fresh_app):
    """Control: ``db check`` does report a problem, so the test above can fail."""
    result = fresh_app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code != 0
