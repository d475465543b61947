"""Throttling failed logins and failed API-token checks (docs/architecture.md, "Security").

Counts live in Redis through Flask-Limiter, so every web process sees the same ones. A login
form that failed ``LOGIN_FAILURE_LIMIT`` times for one email address, or from one client
address, answers 429 with ``Retry-After`` until the window moves on, even for the right
password. An address whose tokens failed ``TOKEN_FAILURE_LIMIT`` times gets 429 instead of 401;
a valid token is never slowed down, and costs no Redis call. When Redis cannot be reached,
nothing is throttled (the limiter's errors are swallowed): logins must not depend on Redis.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug import Response

from webhookapp.core.errors import ServiceError
from webhookapp.infra import redis_client
from webhookapp.infra.extensions import limiter

Hook = TypeVar("Hook")
BLUEPRINT = "auth"  # the only blueprint with limits: login, the two-factor step, password checks


def init_app(app: Flask, blueprint: str = BLUEPRINT) -> None:
    """Start the limiter for ``app``, its request hooks on ``blueprint`` alone.

    Flask-Limiter looks at every request for limits; working out that a request has none costs
    about a tenth of a millisecond, which the event API cannot spare. Only the login page has
    limits (failed token checks are counted by :func:`token_failed`), so its hooks move from the
    app to the auth blueprint.
    """
    _store_counts_in_app_redis(app)
    limiter.init_app(app)
    _move_limiter_hooks(app.before_request_funcs, blueprint)
    _move_limiter_hooks(app.after_request_funcs, blueprint)
    _move_limiter_hooks(app.teardown_request_funcs, blueprint)


STORAGE_TIMEOUT = 2.0  # seconds: a login waits no longer than this on a Redis that is gone


def _store_counts_in_app_redis(app: Flask) -> None:
    """Counts go to ``REDIS_URL`` through our own client (:mod:`webhookapp.infra.redis_client`):
    the limiter's own URL parser reads ``redis+sentinel://`` differently, and our client follows
    a failover. Without ``REDIS_URL``, counts stay in the process."""
    if "RATELIMIT_STORAGE_URI" in app.config:
        return  # chosen explicitly
    if not app.config.get("REDIS_URL"):
        app.config["RATELIMIT_STORAGE_URI"] = "memory://"
        return
    client = redis_client.connect(
        redis_client.configured_url(app), connect_timeout=STORAGE_TIMEOUT, socket_timeout=STORAGE_TIMEOUT
    )
    app.config["RATELIMIT_STORAGE_URI"] = "redis://"  # the scheme picks the storage; the pool says where
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"connection_pool": client.connection_pool}


def _move_limiter_hooks(hooks: dict[str | None, list[Hook]], blueprint: str) -> None:
    """Move the limiter's app-wide hooks of one kind (``before_request``, ...) to ``blueprint``."""
    ours = [hook for hook in hooks.get(None, []) if getattr(hook, "__self__", None) is limiter
            or getattr(hook, "args", ())[:1] == (limiter,)]  # fmt: skip
    for hook in ours:
        hooks[None].remove(hook)
        hooks.setdefault(blueprint, []).append(hook)


FAILED = "webhookapp.login_failed"  # on the request, not g: an app context may outlive a request


def _login_failed(_response: Response) -> bool:
    return bool(request.environ.get(FAILED))


def _login_email() -> str:
    return (request.form.get("email") or "").strip().lower()


def login_failed() -> None:
    """The login being handled failed: count it against the address and the email address."""
    request.environ[FAILED] = True


def throttled_login(
    view: Callable[..., Any],
    on_breach: Callable[[RequestLimit], Response],
    account_key: Callable[[], str] = _login_email,
) -> Callable[..., Any]:
    """``view`` (the login page, or a page that checks a password or a two-factor code again)
    with both limits on its failed POSTs; ``on_breach`` answers a throttled request.

    ``account_key`` names the account a failure counts against (the email typed, or the email of
    the user whose code or password is checked): passwords and codes share one count per account,
    so a second factor gives a guesser no fresh allowance.
    """
    def limit() -> str:
        text: str = current_app.config["LOGIN_FAILURE_LIMIT"]
        return text

    common: dict[str, Any] = {"methods": ["POST"], "deduct_when": _login_failed, "on_breach": on_breach}
    # Shared limits: one count per address and one per account across every page that uses them.
    view = limiter.shared_limit(limit, "login-address", **common)(view)
    return limiter.shared_limit(limit, "login-email", key_func=account_key, **common)(view)


def retry_after(limit: RequestLimit) -> int:
    """Seconds until a breached limit lets the next request through."""
    return max(math.ceil(limit.reset_at - time.time()), 1)


class TooManyFailures(ServiceError):
    """429: too many failed token checks from this address."""

    def __init__(self, seconds: int):
        super().__init__(
            429, "AUTH_429", f"Too many failed token checks from your address: try again in {seconds} seconds."
        )
        self.headers = {"Retry-After": str(seconds)}


def token_failed() -> None:
    """Count a failed token check from this address; raise :class:`TooManyFailures` once over
    ``TOKEN_FAILURE_LIMIT``."""
    item = parse(current_app.config["TOKEN_FAILURE_LIMIT"])
    address = get_remote_address()
    try:
        if limiter.limiter.hit(item, "token-failures", address):
            return
        reset_at, _remaining = limiter.limiter.get_window_stats(item, "token-failures", address)
    except Exception:  # Redis unreachable: throttle nothing, as the limiter itself does
        current_app.logger.warning("Could not count a failed token check: the limiter's storage is unreachable.")
        return
    raise TooManyFailures(max(math.ceil(reset_at - time.time()), 1))
