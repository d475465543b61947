"""SSRF guard applied when a delivery connects (docs/architecture.md, "Security").

The host is resolved here, every address is checked (IPv4-mapped, 6to4 and NAT64 forms are
unwrapped first), and the socket connects to the checked address itself, so DNS cannot answer
differently between the check and the connection. The Host header and the TLS server name stay
the URL's. ``allowed`` CIDRs (``WEBHOOK_ALLOWED_NETWORKS``) are exempt: tests and development use
it for 127.0.0.1; production leaves it empty. With an egress proxy (:mod:`.proxy`) the check is
the same, and the proxy's tunnel is asked for the checked address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolManager

from webhookapp.engine.transport.proxy import EgressProxy, ProxyFailure, ProxyUnreachable, open_tunnel

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# One answer of socket.getaddrinfo: family, socket type, protocol, canonical name, socket address.
AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Ranges the ipaddress flags do not all cover.
EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("100.64.0.0/10", "198.18.0.0/15", "192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


class BlockedAddress(ConnectionError):
    """The endpoint resolves to an address deliveries may not reach; its text is the sentence
    the pages show ("Blocked: 10.0.0.1 is a private address")."""


class UnresolvedHost(ConnectionError):
    """The endpoint's host name has no address, or the lookup failed (``error`` says which)."""

    def __init__(self, host: str, error: socket.gaierror):
        super().__init__(f"Cannot resolve {host}: {error.strerror}")
        self.host, self.error = host, error


def unwrap(address: Address) -> Address:
    """The IPv4 address hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address, else ``address``."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address.sixtofour:
            return address.sixtofour
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def blocked_kind(address: Address, allowed: Iterable[Network] = ()) -> tuple[Address, str] | None:
    """The address (``address`` or the IPv4 one inside it) that may not be reached and what it
    is ("a private address"), or None when ``address`` may be reached."""
    if any(address in network for network in allowed if network.version == address.version):
        return None
    inner = unwrap(address)
    if inner is not address and any(inner in network for network in allowed if network.version == inner.version):
        return None
    for candidate in dict.fromkeys((inner, address)):  # the hidden IPv4 address first: it says more
        for flag in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
            if getattr(candidate, flag):
                return candidate, f"a {flag.removeprefix('is_').replace('_', '-')} address"
        if not candidate.is_global:
            return candidate, "not a public address"
        if any(candidate in network for network in EXTRA_BLOCKED if network.version == candidate.version):
            return candidate, "in a reserved range"
    return None


def blocked_reason(address: Address, allowed: Iterable[Network] = ()) -> str | None:
    """Why ``address`` may not be reached ("10.0.0.1 is a private address"), or None when it may."""
    blocked = blocked_kind(address, allowed)
    return None if blocked is None else f"{blocked[0]} is {blocked[1]}"


def _is_literal(host: str, address: Address) -> bool:
    """Whether the URL named the address itself rather than a host name."""
    try:
        return ipaddress.ip_address(host.strip("[]")) == address
    except ValueError:
        return False


def resolve_checked(host: str, port: int, allowed: Iterable[Network]) -> Sequence[AddressInfo]:
    """``getaddrinfo`` results for ``host``, refusing the lot if any address is blocked."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnresolvedHost(host, exc) from exc
    allowed = tuple(allowed)
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # the host of an IP socket address
        blocked = blocked_kind(address, allowed)
        if blocked:
            found, kind = blocked
            if not _is_literal(host, address):
                raise BlockedAddress(f"Blocked: {host} resolves to {found}, {kind}")
            if found != address:  # the IPv4 address inside an IPv6 one
                raise BlockedAddress(f"Blocked: {host} is {found}, {kind}")
            raise BlockedAddress(f"Blocked: {found} is {kind}")
    return infos


def _connect_checked(conn: _Guarded) -> socket.socket:
    """Open a socket to a checked address of ``conn.host`` (used by both connection classes),
    directly or through the egress proxy's tunnel."""
    try:
        infos = resolve_checked(conn._dns_host, conn.port, conn.allowed_networks)
    except ConnectionError as exc:
        raise NewConnectionError(conn, str(exc)) from exc
    if conn.egress_proxy is not None:
        return _tunnel_checked(conn, conn.egress_proxy, infos)
    last_error: OSError | None = None
    for family, kind, proto, _name, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(conn.timeout if isinstance(conn.timeout, int | float) else None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
            return sock
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out") from exc
        except OSError as exc:
            sock.close()
            last_error = exc
    # Chained, so that the pages can tell a refusal from other failures by type (:mod:`.failures`).
    raise NewConnectionError(conn, f"Failed to establish a new connection: {last_error}") from last_error


def _tunnel_checked(conn: _Guarded, proxy: EgressProxy, infos: Sequence[AddressInfo]) -> socket.socket:
    """A tunnel through ``proxy`` to the first checked address it opens one to."""
    timeout = conn.timeout if isinstance(conn.timeout, int | float) else None
    failure: ProxyFailure | None = None
    for *_, sockaddr in infos:
        try:
            return open_tunnel(proxy, str(sockaddr[0]).split("%", 1)[0], conn.port, timeout)
        except ProxyFailure as exc:
            if isinstance(exc, ProxyUnreachable):
                raise NewConnectionError(conn, str(exc)) from exc  # no other address helps
            failure = exc  # the proxy could not reach this address; maybe the next one
    raise NewConnectionError(conn, str(failure)) from failure


# The connection each thread is using, by thread id: kept by the client that owns the pool
# (:class:`.sender.Sender`), so that its watchdog can cut a request that outlives its deadline
# (read timeouts bound each socket read, not a handler trickling a byte at a time).
ActiveConnections = dict[int, "_Guarded"]


class _Guarded(HTTPConnection):
    """Connects through the guard and registers itself for the watchdog; the base of both classes."""

    allowed_networks: tuple[Network, ...] = ()
    # Not "proxy": urllib3 connections keep their own proxy setting under that name.
    egress_proxy: EgressProxy | None = None  # the egress proxy, if calls leave through one
    active: ActiveConnections  # the pool manager's own (guarded_pool_manager)

    def _new_conn(self) -> socket.socket:
        return _connect_checked(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        self.active[threading.get_ident()] = self
        super().request(*args, **kwargs)


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


def cut(active: ActiveConnections, thread_id: int) -> None:
    """Shut the socket of the request ``thread_id`` is making: its blocked read fails at once."""
    connection = active.get(thread_id)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


def guarded_pool_manager(
    allowed: tuple[Network, ...], active: ActiveConnections, proxy: EgressProxy | None = None, **kwargs: Any
) -> PoolManager:
    """A urllib3 PoolManager whose connections only reach addresses the guard accepts (through
    ``proxy``'s tunnel, if given), each noting itself in ``active`` while it makes a request."""
    attributes = {"allowed_networks": allowed, "active": active, "egress_proxy": proxy}
    http_conn = type("AllowedHTTPConnection", (GuardedHTTPConnection,), attributes)
    https_conn = type("AllowedHTTPSConnection", (GuardedHTTPSConnection,), attributes)
    manager = PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }
    return manager
