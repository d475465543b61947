"""Fixtures in the style of Flask's tutorial: ``app``, ``client``, ``runner``, ``auth``, and the
ones every folder shares: tenants, ``hook``, ``token``, ``csrf_client``, ``postgresql``.

The database is a fresh SQLite file per test, or ``TEST_DATABASE_URL`` (PostgreSQL) when set.
Tests that need PostgreSQL take the ``postgresql`` fixture (which skips them on SQLite) and carry
the ``postgresql`` marker, so ``pytest -m postgresql`` selects them.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from redis import Redis
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from tests import schema
from tests.engine import api_token
from tests.servers import HandlerServer, RedisServer
from webhookapp import create_app
from webhookapp.engine import runtime
from webhookapp.infra.config import normalise_database_url
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Account, Product, User, Webhook
from webhookapp.services import accounts, webhook_changes

PASSWORD = "correct horse battery"

# In CI the fuzzing is derandomized, so that a run fails only on what the change did; locally
# every run draws new examples (and keeps the ones that failed in .hypothesis/).
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true":
    hypothesis.settings.load_profile("ci")

# The fleet test (tests/fleet/) needs root and builds hosts of its own: only `make fleet` runs it.
collect_ignore = [] if os.environ.get("WEBHOOKAPP_FLEET") == "1" else ["fleet"]


def database_url(tmp_path) -> str:
    """``TEST_DATABASE_URL`` (``postgresql://…`` is fine), else a fresh SQLite file. Under
    ``pytest -n`` each worker process has a database of its own beside it (:func:`worker_database`)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return worker_database(normalise_database_url(url), worker) if worker else normalise_database_url(url)


@functools.cache
def worker_database(url: str, worker: str) -> str:
    """The database of ``pytest -n``'s worker ``worker`` (``gw0``, …) on the server of ``url``:
    ``<database>_<worker>``, made on first use; tests of two workers never share tables."""
    shared = make_url(url)
    own = shared.set(database=f"{shared.database}_{worker}")
    server = create_engine(shared, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with server.connect() as connection:
            if not connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database}):
                connection.exec_driver_sql(f'CREATE DATABASE "{own.database}"')
    finally:
        server.dispose()
    return own.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A private redis-server for the session, or None when ``TEST_REDIS_URL`` names one to use.

    Not ``REDIS_URL``: the suite flushes its Redis, which must never be one that matters.
    """
    if os.environ.get("TEST_REDIS_URL"):
        yield None
        return
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer | None) -> str:
    """An empty Redis for this test."""
    if redis_server is not None and redis_server.process is None:
        redis_server.start()  # a test stopped it
    url = redis_server.url if redis_server else os.environ["TEST_REDIS_URL"]
    Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def app(tmp_path, redis_url: str) -> Iterator[Flask]:
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url(tmp_path), "REDIS_URL": redis_url})
    with app.app_context():
        schema.prepare(db)
        yield app
        runtime.of(app).close()  # its sends in flight end and are recorded before the tables go
        schema.empty(db)
        dispose_engines()


@pytest.fixture
def handler() -> Iterator[HandlerServer]:
    """A real HTTP handler on 127.0.0.1 recording what it receives."""
    server = HandlerServer()
    yield server
    server.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@dataclass
class Tenant:
    """An account with one user and its products, as tests need them."""

    account: Account
    user: User
    products: list[Product]

    @property
    def email(self) -> str:
        return self.user.email


def make_tenant(kind: str, name: str, email: str, products: list[tuple[str, bool]] | None = None) -> Tenant:
    account = accounts.create_account(kind, name)
    user = accounts.create_user(account.id, email, PASSWORD, name=f"{name} User")
    made = [accounts.create_product(account.id, pname, dynamic_validation=dyn) for pname, dyn in products or []]
    return Tenant(account, user, made)


@pytest.fixture
def vendor(app: Flask) -> Tenant:
    """A vendor with two products: the second has the Dynamic Validation capability."""
    return make_tenant("vendor", "Acme Vendor", "alice@acme.test", [("Acme Cloud", False), ("Acme Dynamic", True)])


@pytest.fixture
def other_vendor(app: Flask) -> Tenant:
    return make_tenant("vendor", "Other Vendor", "mallory@other.test", [("Other Product", False)])


@pytest.fixture
def distributor(app: Flask) -> Tenant:
    return make_tenant("distributor", "Dist Co", "dave@dist.test")


def make_webhook(tenant: Tenant, **fields) -> Webhook:
    """Create a webhook through the service with sensible defaults."""
    values = {
        "label": "Fulfillment hook",
        "product_id": tenant.products[0].id if tenant.products else None,
        "type_key": "fulfillment_request.event",
        "http_method": "POST",
        "external_url": "https://handler.example.com/hook",
        "active": True,
    }
    values.update(fields)
    return webhook_changes.create_webhook(tenant.account, values)


class AuthActions:
    def __init__(self, client: FlaskClient):
        self._client = client

    def login(self, email: str = "alice@acme.test", password: str = PASSWORD):
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def postgresql(app: Flask) -> str:
    """The test database's URL for psycopg; skips the test on SQLite (its subject is PostgreSQL's)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def hook_fields() -> dict[str, Any]:
    """The fields ``hook`` is made with beyond :func:`make_webhook`'s defaults; a module overrides it."""
    return {}


@pytest.fixture
def hook(vendor: Tenant, hook_fields: dict[str, Any]) -> Webhook:
    """One webhook of ``vendor``'s, made with ``hook_fields``."""
    return make_webhook(vendor, **hook_fields)


@pytest.fixture
def token(vendor: Tenant) -> str:
    """An API token of ``vendor``'s account."""
    return api_token(vendor.account)


@pytest.fixture
def csrf_client(app: Flask, tmp_path, redis_url: str) -> Iterator[FlaskClient]:
    """A client of a second app on the same database and Redis, with CSRF checked as in production."""
    overrides = {"SQLALCHEMY_DATABASE_URI": database_url(tmp_path), "REDIS_URL": redis_url, "WTF_CSRF_ENABLED": True}
    csrf_app = create_app("testing", overrides)
    assert csrf_app.config["WTF_CSRF_ENABLED"] is True
    yield csrf_app.test_client()
    with csrf_app.app_context():
        dispose_engines()


@pytest.fixture
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
