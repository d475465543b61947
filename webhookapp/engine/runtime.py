"""The state a process keeps between requests and jobs, in one object (docs/architecture.md,
"Running"): the delivery thread pool and its HTTP client, the worker's stop request, the event
API's group commits, the HTTP client of the calls a web request waits on and the tracer provider
(:mod:`.tracing`).

The app factory makes one :class:`Runtime` per app (:func:`install`); the web processes and the
worker (``python -m workers`` builds its app with the factory) use their app's, and code reaches
it with :func:`current` or is handed it. A test's app has its own, so nothing is reset by hand.
Thread pools and HTTP clients are built at first use in each process: a forked child builds its
own, since threads and sockets do not cross a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from flask import Config, Flask, current_app
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Tracer

from webhookapp.engine import tracing
from webhookapp.engine.ingest.postgresql import GroupCommit
from webhookapp.engine.transport.sender import Sender

EXTENSION = "webhookapp.runtime"
T = TypeVar("T")


class PerProcess(Generic[T]):
    """A value built at first use in each process (a forked child builds its own)."""

    def __init__(self, build: Callable[[], T]):
        self._build = build
        self._lock = threading.Lock()
        self._held: tuple[int, T] | None = None

    def get(self) -> T:
        """This process's value, built now if it has none."""
        held = self._held
        if held is None or held[0] != os.getpid():
            with self._lock:
                held = self._held
                if held is None or held[0] != os.getpid():
                    held = self._held = (os.getpid(), self._build())
        return held[1]

    def take(self) -> T | None:
        """This process's value if it built one, forgotten here: the caller closes it."""
        held, self._held = self._held, None
        return held[1] if held is not None and held[0] == os.getpid() else None


@dataclass(frozen=True)
class DeliveryPool:
    """A worker process's send threads (``WEBHOOK_WORKER_THREADS``) and the HTTP client they share."""

    executor: ThreadPoolExecutor
    sender: Sender
    threads: int


@dataclass
class Runtime:
    """One app's per-process state; ``config`` is the app's, read when a pool or client is built."""

    config: Config
    stopping: threading.Event = field(default_factory=threading.Event)
    group_commit: GroupCommit = field(default_factory=GroupCommit)
    _delivery: PerProcess[DeliveryPool] = field(init=False, repr=False)
    _validation_sender: PerProcess[Sender] = field(init=False, repr=False)
    # None while tracing is off: the hot paths then test one attribute and make no span.
    _tracing: PerProcess[tuple[TracerProvider, Tracer]] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._delivery = PerProcess(self._build_delivery)
        self._validation_sender = PerProcess(self._build_validation_sender)
        self._tracing = PerProcess(self._build_tracing) if tracing.wanted() else None

    def tracer(self) -> Tracer | None:
        """This app's tracer, or None when tracing is off (docs/operations.md, "Tracing"). Its
        provider is this runtime's, built at first use in each process (the batch exporter's
        thread does not cross a fork); the process-global provider is never set."""
        return None if self._tracing is None else self._tracing.get()[1]

    def trace_to(self, exporter: SpanExporter) -> TracerProvider:
        """Export this app's spans to ``exporter`` as each ends, whatever the environment says
        (tests use the SDK's in-memory exporter); returns the provider."""
        made = tracing.provider(exporter, batch=False)
        held = (made, tracing.tracer_of(made))
        self._tracing = PerProcess(lambda: held)
        return made

    def delivery(self) -> DeliveryPool:
        """The send threads and HTTP client of this process's delivery jobs; kept from one job to
        the next, so connections to handlers stay open."""
        return self._delivery.get()

    def validation_sender(self) -> Sender:
        """The HTTP client of the calls a web request waits on (validations, Redeliver, Send
        test request): the delivery transport and its SSRF guard, with ``WEBHOOK_VALIDATION_TIMEOUT``."""
        return self._validation_sender.get()

    def request_stop(self) -> None:
        """A worker's warm shutdown: the running delivery job stops taking work, hands back the
        calls it has not started and returns once its sends in flight have ended and are recorded."""
        self.stopping.set()

    def finish_sends(self) -> None:
        """At a worker's exit: wait for the sends a finished job left in flight to end and record
        their own outcome, so that none is lost with the process."""
        pool = self._delivery.take()
        if pool is not None:
            pool.executor.shutdown(wait=True)
            pool.sender.close()

    def close(self) -> None:
        """Finish the sends in flight, close the HTTP clients and export the spans still held
        (a test's app at its end)."""
        self.finish_sends()
        sender = self._validation_sender.take()
        if sender is not None:
            sender.close()
        held = self._tracing.take() if self._tracing is not None else None
        if held is not None:
            held[0].shutdown()

    def _build_delivery(self) -> DeliveryPool:
        threads = int(self.config["WEBHOOK_WORKER_THREADS"])
        sender = Sender(
            allowed_networks=self.config["WEBHOOK_ALLOWED_NETWORKS"],
            timeout=float(self.config["WEBHOOK_DELIVERY_TIMEOUT"]),
            pool_size=threads,
            proxy_url=self.config["WEBHOOK_PROXY_URL"],
        )
        return DeliveryPool(ThreadPoolExecutor(threads, thread_name_prefix="deliver"), sender, threads)

    def _build_tracing(self) -> tuple[TracerProvider, Tracer]:
        made = tracing.provider(tracing.exporter_from())
        return made, tracing.tracer_of(made)

    def _build_validation_sender(self) -> Sender:
        return Sender(
            allowed_networks=self.config["WEBHOOK_ALLOWED_NETWORKS"],
            timeout=float(self.config["WEBHOOK_VALIDATION_TIMEOUT"]),
            proxy_url=self.config["WEBHOOK_PROXY_URL"],
        )


def install(app: Flask) -> Runtime:
    """Give ``app`` a new runtime (the factory does; a test may, to start afresh) and return it."""
    made = app.extensions[EXTENSION] = Runtime(app.config)
    return made


def of(app: Flask) -> Runtime:
    """``app``'s runtime."""
    made: Runtime = app.extensions[EXTENSION]
    return made


def current() -> Runtime:
    """The runtime of the app in context."""
    return of(current_app)
