"""One way to reach Redis from a ``REDIS_URL`` (docs/architecture.md, "Operations").

Besides redis-py's own forms (``redis://``, ``rediss://``, ``unix://``), ``REDIS_URL`` may name
Redis Sentinels::

    redis+sentinel://[:password@]host1:26379,host2:26379/service_name/db

The password is the master's (the Sentinels themselves take none). Such a URL becomes a client
from ``Sentinel(...).master_for(service_name)``, which asks the Sentinels where the master is on
its first connection and again after a connection error, so a process follows a failover without
a restart. Every user of Redis (enqueueing, the workers and RQ's scheduler, the sweeper, the login
throttle, rq-dashboard, ``/readyz``) gets its client here: the URL is parsed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from flask import Flask
from redis import Redis
from redis.sentinel import Sentinel, SentinelConnectionPool

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"  # where REDIS_URL is unset and no private one was started
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379  # Sentinel's own default, for a host given without a port


@dataclass(frozen=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int
    password: str | None


def parse_sentinel_url(url: str) -> SentinelTarget | None:
    """The Sentinels, service and database of a ``redis+sentinel://`` URL; None for any other form.

    Raises ValueError, naming the part, when the URL is of that form but malformed.
    """
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    hosts_part = parts.netloc.rpartition("@")[2]
    password = unquote(parts.password) if parts.password else None
    sentinels: list[tuple[str, int]] = []
    for item in hosts_part.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon:
            host, port = port, ""
        host = host.strip("[]")
        if not host:
            raise ValueError(f"REDIS_URL: a Sentinel address is empty in {hosts_part!r}")
        try:
            sentinels.append((host, int(port) if port else SENTINEL_PORT))
        except ValueError:
            raise ValueError(f"REDIS_URL: the Sentinel port in {item!r} is not a number") from None
    path = [piece for piece in parts.path.split("/") if piece]
    if not path or len(path) > 2:
        raise ValueError("REDIS_URL: a Sentinel URL ends in /service_name or /service_name/db")
    try:
        database = int(path[1]) if len(path) == 2 else 0
    except ValueError:
        raise ValueError(f"REDIS_URL: the database {path[1]!r} is not a number") from None
    return SentinelTarget(tuple(sentinels), unquote(path[0]), database, password)


def configured_url(app: Flask) -> str:
    """The app's ``REDIS_URL``, or the default."""
    return str(app.config.get("REDIS_URL") or DEFAULT_REDIS_URL)


def connect(url: str, *, connect_timeout: float, socket_timeout: float) -> Redis:
    """A client for ``url`` with these timeouts (seconds); nothing is connected until first use."""
    target = parse_sentinel_url(url)
    if target is None:
        return Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout)
    timeouts = {"socket_connect_timeout": connect_timeout, "socket_timeout": socket_timeout}
    # redis-py leaves Sentinel unannotated.
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=dict(timeouts), **timeouts)  # type: ignore[no-untyped-call]
    client: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.service_name, db=target.db, password=target.password
    )
    return client


def master_address(client: Redis) -> str | None:
    """``host:port`` of the master a Sentinel client reaches now (asking the Sentinels); None for
    a client of a plain URL, whose address is in the URL."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return None
    host, port = pool.get_master_address()  # type: ignore[no-untyped-call]
    return f"{host}:{port}"
