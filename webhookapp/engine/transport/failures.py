"""Why an attempt got no answer, in one short sentence a person understands ("Connection refused
by 127.0.0.1:8765"), told from the exception's type and its causes, never from its text. The
exception's own text, which names the library's classes, is kept as the technical detail.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from typing import TypeVar
from urllib.parse import urlsplit

import urllib3

from webhookapp.engine.transport import proxy, ssrf

E = TypeVar("E", bound=BaseException)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it: causes, contexts, urllib3's ``reason`` and the
    exceptions among the arguments (how urllib3's ``ProtocolError`` carries http.client's),
    outermost first."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)  # ssl.SSLError's is a text
        pending.extend([current.__cause__, current.__context__, reason if isinstance(reason, BaseException) else None])
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))


def where(url: str) -> str:
    """``host:port`` of a URL, the port filled in from the scheme."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "?", parts.port
    except ValueError:  # a port out of range: the URL as the form checked it is all there is
        return url
    port = port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def detail(exc: BaseException) -> str:
    """The technical detail: the exception's class and text, as the library wrote them."""
    return f"{type(exc).__name__}: {exc}"


def late(timeout: float, *, answered: bool = False) -> str:
    """Time ran out (the delivery timeout, or the watchdog's cut at it)."""
    if answered:
        return f"The answer did not arrive in full within {timeout:g} s"
    return f"No answer within {timeout:g} s"


def describe(
    exc: BaseException, url: str, *, timeout: float, connect_timeout: float, reading: bool = False, cut: bool = False
) -> str:
    """The sentence for a failed call to ``url``. ``reading``: the answer's body was being read;
    ``cut``: the deadline had passed, so the watchdog may have shut the socket."""
    causes = list(chain(exc))
    for sentence in (_guard(causes), _tls(causes), _timeout(causes, url, timeout, connect_timeout)):
        if sentence:
            return sentence
    if cut:  # whatever shutting the socket broke, time ran out
        return late(timeout, answered=reading)
    return _connection(causes, where(url), reading)


def _first(causes: list[BaseException], kind: type[E] | tuple[type[E], ...]) -> E | None:
    return next((cause for cause in causes if isinstance(cause, kind)), None)


def _guard(causes: list[BaseException]) -> str | None:
    blocked = _first(causes, ssrf.BlockedAddress)
    if blocked is not None:
        return str(blocked)
    tunnel = _first(causes, proxy.ProxyFailure)  # its sentence names the proxy and what went wrong
    if tunnel is not None:
        return str(tunnel)
    unresolved = _first(causes, ssrf.UnresolvedHost)
    if unresolved is None:
        return None
    if unresolved.error.errno in _NOT_FOUND:
        return f"Name not found: {unresolved.host}"
    return f"Name lookup failed for {unresolved.host}: {unresolved.error.strerror}"


# The lookup answered that the name has no address (not that the lookup itself failed).
_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _tls(causes: list[BaseException]) -> str | None:
    verify = _first(causes, ssl.SSLCertVerificationError)
    if verify is not None and verify.verify_message:
        return f"TLS: {verify.verify_message}"
    if _first(causes, ssl.SSLEOFError) is not None:  # often a handler refusing the client certificate, or none
        return "TLS: the handler closed the connection during the handshake"
    failed = _first(causes, ssl.SSLError)
    if failed is not None and failed.reason:
        return f"TLS: {failed.reason.lower().replace('_', ' ')}"  # WRONG_VERSION_NUMBER: no TLS there
    if failed is not None or _first(causes, urllib3.exceptions.SSLError) is not None:
        return "TLS: the handshake failed"
    return None


def _timeout(causes: list[BaseException], url: str, timeout: float, connect_timeout: float) -> str | None:
    # urllib3's NewConnectionError (a refusal, say) is a ConnectTimeoutError too, for history's sake.
    causes = [cause for cause in causes if not isinstance(cause, urllib3.exceptions.NewConnectionError)]
    if _first(causes, urllib3.exceptions.ConnectTimeoutError) is not None:
        return f"No connection to {where(url)} within {connect_timeout:g} s"
    if _first(causes, (urllib3.exceptions.TimeoutError, TimeoutError)) is not None:
        return late(timeout)
    return None


def _connection(causes: list[BaseException], at: str, reading: bool) -> str:
    if _first(causes, ConnectionRefusedError) is not None:
        return f"Connection refused by {at}"
    if _first(causes, http.client.RemoteDisconnected) is not None:  # a ConnectionResetError too
        return f"{at} closed the connection without answering"
    if _first(causes, ConnectionResetError) is not None:
        return f"Connection reset by {at} while reading the answer"
    if _first(causes, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)) is not None:
        return f"{at} closed the connection before the answer was complete"
    system = next((cause for cause in causes if isinstance(cause, OSError) and cause.strerror), None)
    if system is not None and reading:
        return f"Reading the answer from {at} failed: {system.strerror}"
    if system is not None:
        return f"Cannot connect to {at}: {system.strerror}"
    if reading:
        return f"The answer from {at} broke off"
    return f"The request to {at} failed"
