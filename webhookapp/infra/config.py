"""Configuration read from the environment (docs/architecture.md, "Configuration").

Three settings classes: development (the default, used by ``make run``), testing and
production.  Choose with ``WEBHOOKAPP_CONFIG``.  Durations are seconds and may be fractions.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webhookapp.infra.crypto import new_key

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
API_ROOT = "/public/v1/"


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _networks(name: str, default: str) -> list[str]:
    """Comma-separated CIDRs; a malformed one stops the process at once, naming the variable."""
    cidrs = [cidr.strip() for cidr in os.environ.get(name, default).split(",") if cidr.strip()]
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return cidrs


def _proxy_url(name: str) -> str:
    """An ``http://[user:password@]host:port`` URL, or empty; a malformed one stops the process
    at once, naming the variable (the transport reads it: engine/transport/proxy.py)."""
    url = os.environ.get(name, "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{name}: give the HTTP CONNECT proxy as http://[user:password@]host:port")
    return url


def normalise_database_url(url: str) -> str:
    """Name the installed driver: ``postgres://`` and ``postgresql://`` mean psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _database_url(default: str) -> str:
    return normalise_database_url(os.environ.get("DATABASE_URL", default))


class Config:
    """Settings shared by every environment."""

    SECRET_KEY: str | None = os.environ.get("SECRET_KEY")
    # Keys of the secrets stored encrypted (infra/crypto.py): comma-separated, the first encrypts,
    # every one decrypts. Development keeps one in instance/encryption_key; production needs it.
    WEBHOOK_ENCRYPTION_KEYS = os.environ.get("WEBHOOK_ENCRYPTION_KEYS", "")
    SQLALCHEMY_DATABASE_URI = _database_url(f"sqlite:///{INSTANCE_DIR / 'webhookapp.sqlite'}")
    # No pool_pre_ping: connections are pinged only after resting (extensions.ping_idle_connections).
    # hide_parameters: a failed statement's parameters (JWT secrets, header values) never reach
    # an exception's text, and so never a log.
    SQLALCHEMY_ENGINE_OPTIONS = {"hide_parameters": True}
    REDIS_URL = os.environ.get("REDIS_URL", "")
    MAX_CONTENT_LENGTH = 256 * 1024  # every request body; the event API narrows it further
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"  # as the session cookie: no cross-site posts with either
    # Sessions (auth/sessions.py, docs/security.md "Sessions"): a session ends after
    # SESSION_IDLE_TIMEOUT seconds without a person's request, and SESSION_MAX_AGE after its login
    # in any case. "Keep me logged in" sets a remember cookie that starts a new session for
    # REMEMBER_COOKIE_DURATION after the login that made it.
    SESSION_IDLE_TIMEOUT = _float("SESSION_IDLE_TIMEOUT", 1800)
    SESSION_MAX_AGE = _float("SESSION_MAX_AGE", 43200)
    REMEMBER_COOKIE_DURATION = timedelta(seconds=_float("REMEMBER_COOKIE_DURATION", 14 * 86400))
    # Revealing a secret, switching secrets and removing two-factor login need the password typed
    # within this many seconds (auth/reauth.py).
    REAUTH_WINDOW = _float("REAUTH_WINDOW", 300)
    # How long the two-factor step of a login waits for the code after the password.
    TWO_FACTOR_LOGIN_WINDOW = _float("TWO_FACTOR_LOGIN_WINDOW", 300)
    WTF_CSRF_TIME_LIMIT = None  # a form left open over lunch still submits
    WEBHOOKS_PER_PAGE = 25
    PASSWORD_HASH_METHOD = "scrypt"

    # The api_url handlers receive (unless the event names its own): this service's public API
    # root, where a handler calls back for the events (docs/architecture.md, "Following events").
    WEBHOOK_API_URL = os.environ.get("WEBHOOK_API_URL", "")
    WEBHOOK_PROCESSING_TIMEOUT = _float("WEBHOOK_PROCESSING_TIMEOUT", 600)
    WEBHOOK_DELIVERY_TIMEOUT = _float("WEBHOOK_DELIVERY_TIMEOUT", 300)
    WEBHOOK_RETRY_BASE = _float("WEBHOOK_RETRY_BASE", 300)
    WEBHOOK_RETRY_FACTOR = _float("WEBHOOK_RETRY_FACTOR", 2)
    WEBHOOK_RETRY_MAX_INTERVAL = _float("WEBHOOK_RETRY_MAX_INTERVAL", 21600)
    WEBHOOK_MAX_ATTEMPTS = _int("WEBHOOK_MAX_ATTEMPTS", 10)
    WEBHOOK_VALIDATION_TIMEOUT = _float("WEBHOOK_VALIDATION_TIMEOUT", 10)
    # Recover (docs/operations.md, "Recovering a time range"): the most requests per second one
    # recovery sends; it runs in the workers, a short slice at a time, between deliveries.
    WEBHOOK_RECOVER_RATE = _float("WEBHOOK_RECOVER_RATE", 10)
    WEBHOOK_ALLOWED_NETWORKS = [
        cidr.strip() for cidr in os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "").split(",") if cidr.strip()
    ]
    # An HTTP CONNECT proxy every call to a handler leaves through (deliveries, validations, Send
    # test request), so handlers see one fixed address: http://[user:password@]host:port. The
    # SSRF guard checks the handler's address first and the proxy is asked for that address;
    # the proxy's own address is exempt (engine/transport/proxy.py). Empty: calls go direct.
    WEBHOOK_PROXY_URL = _proxy_url("WEBHOOK_PROXY_URL")
    WEBHOOK_ATTEMPT_RETENTION_DAYS = _float("WEBHOOK_ATTEMPT_RETENTION_DAYS", 30)
    # Events are kept as long: a client id seen within this time is recognised as a duplicate.
    WEBHOOK_EVENT_RETENTION_DAYS = _float("WEBHOOK_EVENT_RETENTION_DAYS", 30)
    # The audit trail (models/audit.py): kept a year by default, pruned hourly like the attempts.
    WEBHOOK_AUDIT_RETENTION_DAYS = _float("WEBHOOK_AUDIT_RETENTION_DAYS", 365)
    WEBHOOK_WORKER_THREADS = _int("WEBHOOK_WORKER_THREADS", 64)
    WEBHOOK_SWEEP_INTERVAL = _int("WEBHOOK_SWEEP_INTERVAL", 1)
    WEBHOOK_IDLE_WAIT = _float("WEBHOOK_IDLE_WAIT", 1)
    # How long a start waits for the database to check the encryption keys against a stored
    # secret; a database that does not answer is left to /readyz (models/secret_columns.py).
    WEBHOOK_START_CHECK_TIMEOUT = _float("WEBHOOK_START_CHECK_TIMEOUT", 10)
    EVENT_MAX_BYTES = 64 * 1024
    # Alerts (engine/maintenance/alerts.py): mail to the account's users when a webhook goes Out of order and
    # when it recovers. Without MAIL_SERVER the messages are logged instead.
    WEBHOOK_ALERT_INTERVAL = _int("WEBHOOK_ALERT_INTERVAL", 10)
    WEBHOOK_SITE_URL = os.environ.get("WEBHOOK_SITE_URL", "")  # the pages' root, for links in messages
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = _int("MAIL_PORT", 25)
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS", "") == "1"  # STARTTLS
    MAIL_USE_SSL = os.environ.get("MAIL_USE_SSL", "") == "1"  # TLS from the start (port 465)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
    MAIL_FROM = os.environ.get("MAIL_FROM", "webhookapp <webhookapp@localhost>")
    MAIL_TIMEOUT = _float("MAIL_TIMEOUT", 10)
    # How many reverse proxies stand in front of the web processes, each appending to
    # X-Forwarded-For and setting X-Forwarded-Proto and -Host (docs/deploying.md). 0: none, the
    # headers are ignored (anyone could send them). More than 0: werkzeug's ProxyFix reads that
    # many hops, so the client's address and scheme are the request's (app.register_proxy).
    WEBHOOK_PROXY_COUNT = _int("WEBHOOK_PROXY_COUNT", 0)
    # Throttling (throttling.py): failed logins per email address and per client address, failed
    # API-token checks per client address. Behind a proxy, set WEBHOOK_PROXY_COUNT, or every
    # client shares the proxy's.
    LOGIN_FAILURE_LIMIT = os.environ.get("LOGIN_FAILURE_LIMIT", "10 per 15 minutes")
    TOKEN_FAILURE_LIMIT = os.environ.get("TOKEN_FAILURE_LIMIT", "30 per 15 minutes")
    RATELIMIT_STRATEGY = "moving-window"
    RATELIMIT_SWALLOW_ERRORS = True  # Redis down: nothing is throttled, nothing fails
    # Off: the limiter would put its window's Retry-After on every answer of a limited page, a
    # 200 or a 503 too. The throttled answers set their own (auth/routes.py, throttling.py).
    RATELIMIT_HEADERS_ENABLED = False
    # Who may read /metrics without an operator's token (ops/access.py). Behind a proxy, see
    # the throttling note above: the address is the proxy's unless WEBHOOK_PROXY_COUNT is set.
    WEBHOOK_METRICS_NETWORKS = _networks("WEBHOOK_METRICS_NETWORKS", "127.0.0.0/8,::1/128")
    # Where every process of the machine keeps its counters (metrics.py); must be set in the
    # environment before the processes start, the same for all of them.
    PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    # text (as Python's logging has it) or json: one object per line, for log collectors (logs.py).
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")

    @classmethod
    def finalize(cls, config: dict[str, Any]) -> None:
        """Fill settings that depend on the environment chosen; raise if one is missing."""
        if not config.get("SECRET_KEY"):
            config["SECRET_KEY"] = _instance_secret_key()
        if not config.get("WEBHOOK_ENCRYPTION_KEYS"):
            config["WEBHOOK_ENCRYPTION_KEYS"] = _instance_file("encryption_key", new_key)
        if not config.get("WEBHOOK_API_URL"):
            # make run sets it from HOST and PORT; a bare `flask run` is on the same defaults.
            host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "5000")
            config["WEBHOOK_API_URL"] = f"http://{host}:{port}{API_ROOT}"


class DevelopmentConfig(Config):
    """``make run``: SQLite in ``instance/``, a secret key kept in ``instance/secret_key``."""

    WEBHOOK_ALLOWED_NETWORKS = Config.WEBHOOK_ALLOWED_NETWORKS or ["127.0.0.0/8", "::1/128"]


class TestingConfig(Config):
    """The test suite: CSRF off (one test turns it back on), a database given by the fixture."""

    TESTING = True
    WTF_CSRF_ENABLED = False
    SECRET_KEY = "testing-secret-key"
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast; the hashing itself is werkzeug's concern
    REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: a test gives its own, never the machine's
    SQLALCHEMY_DATABASE_URI = normalise_database_url(os.environ.get("TEST_DATABASE_URL", "sqlite://"))
    WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    WEBHOOK_PROXY_URL = ""  # a test that wants one starts its own
    WEBHOOK_IDLE_WAIT = 0.0  # a drain called by a test returns as soon as its work is done
    WEBHOOK_START_CHECK_TIMEOUT = 5.0  # a test of a database that never answers waits this long
    WEBHOOK_API_URL = f"http://localhost{API_ROOT}"  # the test client's own address
    # A fixed key, so that a test may read what another process of the same suite stored.
    WEBHOOK_ENCRYPTION_KEYS = "dGVzdGluZy1rZXktMzItYnl0ZXMtbG9uZy0tLS0tLS0="


class ProductionConfig(Config):
    """Production refuses to start without ``SECRET_KEY``; cookies only over HTTPS."""

    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @classmethod
    def finalize(cls, config: dict[str, Any]) -> None:
        if not config.get("SECRET_KEY"):
            raise RuntimeError("SECRET_KEY must be set in production (WEBHOOKAPP_CONFIG=production).")
        if not config.get("WEBHOOK_ENCRYPTION_KEYS"):
            raise RuntimeError(
                "WEBHOOK_ENCRYPTION_KEYS must be set in production (WEBHOOKAPP_CONFIG=production): the "
                "stored webhook secrets are encrypted with it. Make a key with `flask --app wsgi secrets "
                "new-key` and keep it apart from the database's backups."
            )
        if not config.get("WEBHOOK_API_URL"):
            # Only this service's public address lets handlers call back; it cannot be guessed
            # behind a proxy, and a worker has no request to read it from.
            logging.getLogger("webhookapp").warning(
                "WEBHOOK_API_URL is not set: handlers receive api_url %r and cannot call back for their "
                "events. Set it to this service's public API root, such as https://webhooks.example.com%s.",
                API_ROOT,
                API_ROOT,
            )
            config["WEBHOOK_API_URL"] = API_ROOT


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def _instance_secret_key() -> str:
    """A random key kept in ``instance/`` so that logins survive a restart of ``make run``."""
    return _instance_file("secret_key", lambda: secrets.token_hex(32))


def _instance_file(name: str, make: Callable[[], str]) -> str:
    """A value kept in ``instance/NAME`` (readable by its owner alone), made once with ``make``."""
    path = INSTANCE_DIR / name
    if path.exists():
        return path.read_text().strip()
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value
