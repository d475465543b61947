"""The HTTP call to a handler (docs/architecture.md, "Delivery contract"): one request per
attempt, nothing followed, capped reads, through the SSRF guard of :mod:`.ssrf`.

Runs in worker threads, so it touches no database session: it takes a prepared request and
returns an :class:`AttemptResult` that the caller records.
"""

from __future__ import annotations

import codecs
import logging
import ssl
import threading
import time
from datetime import datetime
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

from webhookapp.core.rules import scrub
from webhookapp.core.times import utcnow
from webhookapp.engine.timing import CONNECT_TIMEOUT_MAX, WATCHDOG_TICK
from webhookapp.engine.transport import client_tls, failures, proxy, ssrf
from webhookapp.engine.types import AttemptResult, PreparedCall

log = logging.getLogger(__name__)

RESPONSE_CAP = 64 * 1024  # bytes of a response body read and recorded
CHUNK = 8192


class _GuardedAdapter(HTTPAdapter):
    def __init__(
        self,
        allowed: tuple[ssrf.Network, ...],
        active: ssrf.ActiveConnections,
        pool_size: int,
        egress: proxy.EgressProxy | None,
    ):
        self._allowed = allowed
        self._active = active
        self._egress = egress
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        self.poolmanager = ssrf.guarded_pool_manager(
            self._allowed, self._active, self._egress, num_pools=connections, maxsize=maxsize, block=block, **kwargs
        )

    # A call with a client certificate passes its TLS context as ``cert``: the context is part of
    # urllib3's pool key, so its connections are pooled apart from every other webhook's.
    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(cert, ssl.SSLContext):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, None)
        pool_kwargs["ssl_context"] = cert
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if not isinstance(cert, ssl.SSLContext):
            super().cert_verify(conn, url, verify, cert)
            return
        # The context holds the CAs to trust and the certificate: no file for urllib3 to add.
        conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_REQUIRED", None, None


class Sender:
    """A keep-alive HTTP client for deliveries, safe to share between threads.

    Requests go straight to requests' transport adapter, without a ``Session``: a delivery needs
    none of what a session adds (cookies, redirects, proxies and credentials from the
    environment, hooks), and skipping it halves the CPU time of a call. Proxies from the
    environment in particular must stay out, since the SSRF guard checks the address the socket
    connects to; ``proxy_url`` (``WEBHOOK_PROXY_URL``) is the one proxy, tunnelled to the
    checked address (:mod:`.proxy`).
    """

    def __init__(self, *, allowed_networks: list[str], timeout: float, pool_size: int = 64, proxy_url: str = ""):
        self.timeout = timeout
        self._active: ssrf.ActiveConnections = {}  # thread → the connection of its request
        egress = proxy.EgressProxy.parse(proxy_url) if proxy_url else None
        self._adapter = _GuardedAdapter(ssrf.parse_networks(allowed_networks), self._active, pool_size, egress)
        self._contexts = client_tls.Contexts()  # TLS contexts of webhooks with client certificates
        self._deadlines: dict[int, float] = {}  # thread → when its request must be over
        self._watchdog: threading.Thread | None = None
        self._watchdog_lock = threading.Lock()
        self._closed = threading.Event()

    def _watch(self) -> None:
        """Cut requests past their deadline, every WATCHDOG_TICK seconds, until :meth:`close`."""
        while not self._closed.wait(WATCHDOG_TICK):
            now = time.monotonic()
            for thread_id, deadline in list(self._deadlines.items()):
                if now > deadline:
                    ssrf.cut(self._active, thread_id)

    def _start_watchdog(self) -> None:
        with self._watchdog_lock:
            if self._watchdog is None or not self._watchdog.is_alive():
                self._watchdog = threading.Thread(target=self._watch, name="delivery-watchdog", daemon=True)
                self._watchdog.start()

    def close(self) -> None:
        """Stop the watchdog and close the kept connections: the sender is done with (a test's
        app, a worker at its exit). Call it once no send is running."""
        self._closed.set()
        self._adapter.close()

    def send(self, call: PreparedCall) -> AttemptResult:
        """Make the call; success is a 2xx answer, fully read within the delivery timeout.

        Never raises: whatever goes wrong is a failed attempt with its reason, so one odd
        handler cannot break a worker's loop for everyone else.
        """
        started_at = utcnow()
        thread_id = threading.get_ident()
        self._start_watchdog()
        # The whole attempt, headers included, ends by the delivery timeout (plus a tick).
        self._deadlines[thread_id] = time.monotonic() + self.timeout
        try:
            return self._send(call, started_at)
        except Exception as exc:  # every failure is the attempt's outcome
            log.exception("Delivery to %s failed unexpectedly", call.url)
            error, detail = scrub(self._describe(exc, call.url)), scrub(failures.detail(exc))
            return AttemptResult(
                started_at=started_at, duration_ms=0.0, success=False, error=error, error_detail=detail
            )
        finally:
            self._deadlines.pop(thread_id, None)
            self._active.pop(thread_id, None)

    def _describe(self, exc: BaseException, url: str, *, reading: bool = False, deadline: float | None = None) -> str:
        cut = deadline is not None and time.monotonic() > deadline
        connect_timeout = min(self.timeout, CONNECT_TIMEOUT_MAX)
        return failures.describe(
            exc, url, timeout=self.timeout, connect_timeout=connect_timeout, reading=reading, cut=cut
        )

    def _send(self, call: PreparedCall, started_at: datetime) -> AttemptResult:
        start = time.monotonic()
        deadline = start + self.timeout

        def result(**kwargs: Any) -> AttemptResult:
            for key in ("error", "error_detail"):
                if kwargs.get(key):
                    kwargs[key] = scrub(kwargs[key])  # it may quote what the handler sent
            return AttemptResult(started_at=started_at, duration_ms=(time.monotonic() - start) * 1000, **kwargs)

        try:
            request = PreparedRequest()
            # prepare() validates the URL and refuses header values with line breaks.
            request.prepare(method=call.method, url=call.url, headers=call.headers, data=call.body)
            # An adapter never follows redirects: the 3xx answer is the attempt's outcome.
            timeouts = (min(self.timeout, CONNECT_TIMEOUT_MAX), self.timeout)
            # Only https:// handlers are offered the certificate; a plain call has no TLS to show it in.
            tls = self._contexts.get(call.client_tls) if call.client_tls and call.url.startswith("https:") else None
            response = self._adapter.send(request, stream=True, timeout=timeouts, cert=tls)  # type: ignore[arg-type]
        except requests.RequestException as exc:
            failure = self._describe(exc, call.url, deadline=deadline)
            return result(success=False, error=failure, error_detail=failures.detail(exc))
        try:
            body, truncated, late = _read_capped(response, deadline)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            failure = self._describe(exc, call.url, reading=True, deadline=deadline)
            return result(success=False, status=response.status_code, error=failure, error_detail=failures.detail(exc))
        finally:
            response.close()
        status = response.status_code
        # Whatever the handler sent is recorded in a form every database stores (no NUL, no lone
        # surrogates), so that one odd answer cannot fail the recording of its whole batch.
        headers = {scrub(name): scrub(value) for name, value in dict(response.headers).items()}
        text = scrub(body.decode(_codec(response.encoding), errors="replace"))
        if late:
            error: str | None = failures.late(self.timeout, answered=True)
        elif 300 <= status < 400:
            error = f"Redirects are not followed (HTTP {status} to {response.headers.get('Location', '?')})."
        elif not 200 <= status < 300:
            error = f"The handler answered HTTP {status}."
        else:
            error = None
        return result(
            success=error is None, status=status, headers=headers, body=text, truncated=truncated, error=error
        )


def _codec(name: str | None) -> str:
    """The response's charset if Python knows it, else UTF-8 (a handler may name anything)."""
    try:
        return codecs.lookup(name or "utf-8").name
    except LookupError:
        return "utf-8"


def _read_capped(response: requests.Response, deadline: float) -> tuple[bytes, bool, bool]:
    """Read at most RESPONSE_CAP bytes; report whether more was sent and whether time ran out.

    ``read1`` returns whatever one socket read brings, so a handler trickling its body is cut
    off at the deadline instead of holding the attempt for a read timeout per chunk.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            return b"".join(chunks), False, True
        chunk = response.raw.read1(CHUNK, decode_content=True)
        if not chunk:
            return b"".join(chunks), False, False
        chunks.append(chunk)
        size += len(chunk)
        if size > RESPONSE_CAP:  # one byte more than the cap proves there was more
            return b"".join(chunks)[:RESPONSE_CAP], True, False
