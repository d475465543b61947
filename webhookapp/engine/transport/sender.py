"""The HTTP call to a handler (docs/architecture.md, "Delivery contract"): one request per
attempt, nothing followed, capped reads, through the SSRF guard of :mod:`.ssrf`.

Runs in worker threads, so it touches no database session: it takes a prepared request and
returns an :class:`AttemptResult` that the caller records.
"""

from __future__ import annotations

import codecs
import functools
import logging
import threading
import time
from datetime import datetime
from typing import Any, cast

import urllib3
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3.util import Url, parse_url

from webhookapp.core.rules import scrub
from webhookapp.core.times import utcnow
from webhookapp.engine.timing import CONNECT_TIMEOUT_MAX, WATCHDOG_TICK
from webhookapp.engine.transport import client_tls, failures, proxy, ssrf
from webhookapp.engine.types import AttemptResult, PreparedCall

log = logging.getLogger(__name__)

RESPONSE_CAP = 64 * 1024  # bytes of a response body read and recorded
CHUNK = 8192


class Sender:
    """A keep-alive HTTP client for deliveries, safe to share between threads.

    Requests go straight to urllib3's connection pools (the ones requests itself uses), without
    requests' objects around them: a delivery needs none of what they add (cookies, redirects,
    proxies and credentials from the environment, hooks, its ``Response``), and a call then costs
    about half the CPU time it costs through requests' adapter, and a third of what it costs
    through a ``Session`` (docs/performance.md, "Sending straight through urllib3"). Proxies from
    the environment in particular must stay out, since the SSRF guard checks the address the
    socket connects to; ``proxy_url`` (``WEBHOOK_PROXY_URL``) is the one proxy, tunnelled to the
    checked address (:mod:`.proxy`). Handlers' certificates are checked against the CAs requests
    trusts (certifi's bundle), or a webhook's own CA bundle (:mod:`.client_tls`).
    """

    def __init__(self, *, allowed_networks: list[str], timeout: float, pool_size: int = 64, proxy_url: str = ""):
        self.timeout = timeout
        self._active: ssrf.ActiveConnections = {}  # thread → the connection of its request
        egress = proxy.EgressProxy.parse(proxy_url) if proxy_url else None
        self._pools = ssrf.guarded_pool_manager(
            ssrf.parse_networks(allowed_networks), self._active, egress, num_pools=pool_size, maxsize=pool_size
        )
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

    @property
    def connect_timeout(self) -> float:
        """Seconds a connection may take: the delivery timeout, at most ``CONNECT_TIMEOUT_MAX``."""
        return min(self.timeout, CONNECT_TIMEOUT_MAX)

    def close(self) -> None:
        """Stop the watchdog and close the kept connections: the sender is done with (a test's
        app, a worker at its exit). Call it once no send is running."""
        self._closed.set()
        self._pools.clear()

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
        return failures.describe(
            exc, url, timeout=self.timeout, connect_timeout=self.connect_timeout, reading=reading, cut=cut
        )

    def _request(self, call: PreparedCall) -> urllib3.BaseHTTPResponse:
        """Send the request and read the answer's head; the body is left to read.

        Nothing is retried and no redirect is followed: the 3xx answer is the attempt's outcome.
        http.client refuses header values with line breaks (``ValueError``).
        """
        url = _parsed(call.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise urllib3.exceptions.LocationParseError(call.url)
        if url.scheme == "https":
            # Only https:// handlers are offered the certificate; a plain call has no TLS to show it in.
            tls = self._contexts.get(call.client_tls) if call.client_tls else None
            # A call with a client certificate has its TLS context in urllib3's pool key, so its
            # connections are pooled apart from every other webhook's.
            checks: dict[str, Any] = (
                {"cert_reqs": "CERT_REQUIRED", "ca_certs": client_tls.PUBLIC_CAS}
                if tls is None
                else {"cert_reqs": "CERT_REQUIRED", "ssl_context": tls}
            )
            pool = self._pools.connection_from_host(url.host, url.port, "https", pool_kwargs=checks)
        else:
            pool = self._pools.connection_from_host(url.host, url.port, "http")
        return pool.urlopen(
            call.method,
            url.request_uri,
            body=call.body,
            headers=call.headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=True,
            timeout=urllib3.Timeout(connect=self.connect_timeout, read=self.timeout),
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
            response = self._request(call)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:  # ValueError: a URL urllib3 refuses
            failure = self._describe(exc, call.url, deadline=deadline)
            return result(success=False, error=failure, error_detail=failures.detail(exc))
        try:
            body, truncated, late = _read_capped(response, deadline)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            failure = self._describe(exc, call.url, reading=True, deadline=deadline)
            return result(success=False, status=response.status, error=failure, error_detail=failures.detail(exc))
        finally:
            # Read to its end, the connection went back to the pool already; else it is closed.
            response.close()
        status = response.status
        # Whatever the handler sent is recorded in a form every database stores (no NUL, no lone
        # surrogates), so that one odd answer cannot fail the recording of its whole batch.
        headers = {scrub(name): scrub(value) for name, value in dict(response.headers).items()}
        # The charset as requests reads it (urllib3's headers are case-insensitive too).
        charset = get_encoding_from_headers(cast(CaseInsensitiveDict[str], response.headers))
        text = scrub(body.decode(_codec(charset), errors="replace"))
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


@functools.lru_cache(maxsize=4096)
def _parsed(url: str) -> Url:
    """``url`` as urllib3 reads it, kept: a worker sends to the same few URLs again and again, and
    parsing one costs about a twentieth of a call's CPU."""
    return parse_url(url)


def _codec(name: str | None) -> str:
    """The response's charset if Python knows it, else UTF-8 (a handler may name anything)."""
    try:
        return codecs.lookup(name or "utf-8").name
    except LookupError:
        return "utf-8"


def _read_capped(response: urllib3.BaseHTTPResponse, deadline: float) -> tuple[bytes, bool, bool]:
    """Read at most RESPONSE_CAP bytes; report whether more was sent and whether time ran out.

    ``read1`` returns whatever one socket read brings, so a handler trickling its body is cut
    off at the deadline instead of holding the attempt for a read timeout per chunk.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            return b"".join(chunks), False, True
        chunk = response.read1(CHUNK)
        if not chunk:
            return b"".join(chunks), False, False
        chunks.append(chunk)
        size += len(chunk)
        if size > RESPONSE_CAP:  # one byte more than the cap proves there was more
            return b"".join(chunks)[:RESPONSE_CAP], True, False
