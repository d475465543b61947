"""What an API token may do (docs/security.md, "Scoped and expiring API tokens"): its scopes, and
the errors of a token outside them or past its expiry.

One table drives the API's checks, the tokens page, the command line and the OpenAPI document.
A token stores its scopes as one space-separated string, in the table's order, so that the event
API's PostgreSQL statement can test one with ``LIKE`` (:data:`SCOPE_SQL`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from webhookapp.core.errors import ServiceError, Unauthenticated
from webhookapp.core.times import isoformat

WEBHOOKS_READ = "webhooks:read"
WEBHOOKS_WRITE = "webhooks:write"
WEBHOOKS_SECRETS = "webhooks:secrets"
EVENTS_WRITE = "events:write"
EVENTS_READ = "events:read"
AUDIT_READ = "audit:read"
VALIDATIONS_WRITE = "validations:write"

SCOPES: dict[str, str] = {
    WEBHOOKS_READ: "List and read webhooks and their delivery attempts.",
    WEBHOOKS_WRITE: "Create, change, delete, trigger, redeliver and recover webhooks.",
    WEBHOOKS_SECRETS: "See and set webhooks' JWT secrets (with webhooks:write: generate and switch secrets).",
    EVENTS_WRITE: "Post queue-change events.",
    EVENTS_READ: "Read the events the account posted or its webhooks matched.",
    AUDIT_READ: "Read the account's activity (the audit trail).",
    VALIDATIONS_WRITE: "Ask the synchronous validation webhooks.",
}
"""Every scope with what it allows, as the tokens page and the OpenAPI document say it."""

ALL_SCOPES = tuple(SCOPES)
SCOPES_MAX = 200  # the column's width; every scope together is well under it

SCOPE_SQL = "(' ' || {column} || ' ') LIKE {pattern}"
"""The SQL twin of :func:`allows`: ``{column}`` holds the token's scopes, ``{pattern}`` is bound
to :func:`like_pattern` of the scope needed."""


class UnknownScope(ValueError):
    """A scope name that is not in :data:`SCOPES`."""


def normalized(names: Iterable[str]) -> str:
    """The stored form of ``names``: known scopes, each once, in the table's order, space-separated.

    Raises :class:`UnknownScope` naming the first unknown one.
    """
    chosen = set()
    for name in names:
        if name not in SCOPES:
            raise UnknownScope(f"Unknown scope '{name}': choose from {', '.join(ALL_SCOPES)}.")
        chosen.add(name)
    return " ".join(scope for scope in ALL_SCOPES if scope in chosen)


def allows(stored: str, scope: str) -> bool:
    """Whether a token whose stored scopes are ``stored`` has ``scope``."""
    return scope in stored.split()


def like_pattern(scope: str) -> str:
    """The ``LIKE`` pattern of :data:`SCOPE_SQL` for ``scope`` (scope names hold no ``%`` or ``_``)."""
    return f"% {scope} %"


class InsufficientScope(ServiceError):
    """A valid token asked for something outside its scopes: 403, naming the scope it needed."""

    def __init__(self, scope: str, *also: str):
        needed = " and ".join((scope, *also))
        plural = "scopes" if also else "scope"
        super().__init__(403, "AUTH_403", f"This token lacks the {plural} {needed}.")
        listed = " ".join((scope, *also))  # RFC 6750: the scopes needed, space-separated
        self.headers = {"WWW-Authenticate": f'Bearer realm="webhookapp", error="insufficient_scope", scope="{listed}"'}


class TokenExpired(Unauthenticated):
    """A token past its expiry: 401 like any refused token (and counted as a failed check)."""

    def __init__(self, expired_at: datetime):
        super().__init__(f"This token expired on {isoformat(expired_at)}; create a new one on the API tokens page.")
