"""Flask extensions, created unbound and initialised by the app factory."""

import time
from typing import TYPE_CHECKING, Any, ClassVar, cast

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, MetaData, Table, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from werkzeug.local import LocalProxy

# Named constraints keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as FlaskModel

    class Model(FlaskModel, Base):
        """What ``db.Model`` is at run time (Flask-SQLAlchemy's mixins on our declarative base),
        spelled as a class: mypy cannot use an attribute of ``db`` as a base class."""

        __abstract__ = True
        __table__: ClassVar[Table]  # every model maps one table (SQLAlchemy allows any FROM clause)

else:
    Model = db.Model

migrate = Migrate()
csrf = CSRFProtect()
# Storage, strategy and switches come from the RATELIMIT_* settings (config.py); the limits
# themselves are in throttling.py, which also moves the limiter's request hooks to the one
# blueprint that has limits.
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."
login_manager.login_message_category = "info"


def app_object() -> Flask:
    """The app behind ``current_app``, for work that outlives the current app context (a thread,
    a callback kept for later)."""
    # Flask declares the proxy as a Flask; it is a LocalProxy, which can give the app itself.
    return cast("LocalProxy[Flask]", current_app)._get_current_object()


def on_postgresql() -> bool:
    """Whether the app's database is PostgreSQL, where the hot paths have statements of their own."""
    return db.engine.dialect.name == "postgresql"


GENERIC_PLANS = "webhookapp.generic_plans"
"""Where the app keeps, on PostgreSQL, the engine of the event API's statement and the claim:
connections of their own, on which PostgreSQL plans each prepared statement once, through the
indexes, rather than on every call (:data:`.database.KEYED_SETTINGS`; docs/architecture.md,
"PostgreSQL fast paths")."""


def generic_plans_engine() -> Engine:
    """The engine of :data:`GENERIC_PLANS` on PostgreSQL; elsewhere the app's own."""
    engine: Engine | None = current_app.extensions.get(GENERIC_PLANS)
    return engine or db.engine


def dispose_engines() -> None:
    """Close the pooled connections of every engine of the app: its own and that of :data:`GENERIC_PLANS`."""
    for engine in db.engines.values():
        engine.dispose()
    if GENERIC_PLANS in current_app.extensions:
        current_app.extensions[GENERIC_PLANS].dispose()


IDLE_PING_AFTER = 5.0  # seconds a pooled connection may rest before it is checked again


def ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only if it has rested for ``IDLE_PING_AFTER`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip for each
    request. A connection handed on within seconds is alive in practice; one that rested may
    have been cut (a database restart, a firewall), and is replaced if the ping fails.
    """

    @event.listens_for(engine, "checkin")
    def rested_since(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_rested(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure means the connection is gone
            raise DisconnectionError(f"A pooled connection failed its ping: {exc}") from exc
