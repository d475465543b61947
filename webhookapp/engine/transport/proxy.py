"""The egress proxy (``WEBHOOK_PROXY_URL``, docs/operations.md "Egress proxy"): every call to a
handler leaves through an HTTP proxy's ``CONNECT`` tunnel, so handlers see one fixed address.

The SSRF guard (:mod:`.ssrf`) resolves and checks the handler's host first; the tunnel is then
asked for the checked address itself (``CONNECT 203.0.113.7:443``), never for the name, so the
proxy's own DNS cannot send the call elsewhere. The request inside the tunnel keeps the URL's
``Host`` header and, over TLS, its server name and certificate check. ``http://`` handlers go
through a tunnel too (not as absolute-form requests), for the same reason. The proxy's own
address is not checked by the guard: the operator chose it.
"""

from __future__ import annotations

import base64
import http.client
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


class ProxyFailure(ConnectionError):
    """The proxy could not be reached, or would not open the tunnel; its text is the sentence the
    pages show ("Cannot reach the egress proxy 10.0.0.5:3128: Connection refused")."""


class ProxyUnreachable(ProxyFailure):
    """No connection to the proxy itself: no other address of the handler would fare better."""


@dataclass(frozen=True)
class EgressProxy:
    """Where the proxy listens and the ``Proxy-Authorization`` its URL's credentials make."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def parse(cls, url: str) -> EgressProxy:
        """The proxy of ``http://[user:password@]host:port``; ValueError says what is wrong."""
        parts = urlsplit(url.strip())
        if parts.scheme != "http":
            raise ValueError("WEBHOOK_PROXY_URL must be an http:// URL of an HTTP CONNECT proxy")
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError("WEBHOOK_PROXY_URL has a port out of range") from None
        if not parts.hostname:
            raise ValueError("WEBHOOK_PROXY_URL names no host")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        return cls(parts.hostname, port, authorization)

    @property
    def address(self) -> str:
        """``host:port``, as messages name the proxy (never with its credentials)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def open_tunnel(proxy: EgressProxy, ip: str, port: int, timeout: float | None) -> socket.socket:
    """A socket to ``ip:port`` through the proxy's ``CONNECT`` tunnel, ready for HTTP or TLS.

    Raises :class:`ProxyUnreachable` when the proxy cannot be reached, :class:`ProxyFailure` when
    it does not open the tunnel (each chained to the socket's error, if any)."""
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    except OSError as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else exc.strerror or type(exc).__name__
        raise ProxyUnreachable(f"Cannot reach the egress proxy {proxy.address}: {reason}") from exc
    target = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        # The proxy says nothing after its answer until the client speaks (HTTP and TLS both
        # start with the client), so reading the answer's head cannot swallow tunnelled bytes.
        answer = http.client.HTTPResponse(sock, method="CONNECT")
        answer.begin()
    except (OSError, http.client.HTTPException) as exc:
        sock.close()
        if isinstance(exc, TimeoutError):
            raise ProxyFailure(f"The egress proxy {proxy.address} did not answer CONNECT {target} in time") from exc
        raise ProxyFailure(f"The egress proxy {proxy.address} broke off CONNECT {target}") from exc
    status, reason = answer.status, answer.reason
    answer.close()  # its file object only: the socket stays open for the tunnel
    if not 200 <= status < 300:
        sock.close()
        raise ProxyFailure(f"The egress proxy {proxy.address} answered {status} {reason} to CONNECT {target}")
    return sock
