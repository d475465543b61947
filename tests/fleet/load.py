"""The client's side of the fleet test: a steady event load, probes, and the sink's log."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from random import Random
from typing import NamedTuple

import requests

from tests.fleet import hosts
from tests.fleet.cluster import SINK_PORT, WEB_PORT

EVENTS_URL = f"http://{hosts.address('web')}:{WEB_PORT}/public/v1/events"
SINK_URL = f"http://{hosts.address('sink')}:{SINK_PORT}"


def session() -> requests.Session:
    made = requests.Session()
    made.trust_env = False  # no proxy from the environment: the hosts' own addresses only
    return made


def taken(response: requests.Response) -> bool:
    """The event API took the event: now (202), or before, for a repeated client id (200)."""
    return response.status_code == 202 or (response.status_code == 200 and response.json().get("duplicate") is True)


@dataclass
class Load:
    """Events posted at ``rate`` per second by ``threads`` threads, each to a random product.

    A 503 with Retry-After is the API's "come back": the same event, with the same client id, is
    posted again after the wait. A 503 may follow a commit whose answer the database never gave
    (a primary stopped as it committed): the API then answers the repeat 200, a duplicate, and
    the event counts once. Anything else but a 202 is kept in ``wrong``.
    """

    token: str
    products: list[str]
    rate: float = 30.0
    threads: int = 4
    accepted: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _running: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._stop.clear()
        self._running = [threading.Thread(target=self._post_loop, args=(n,), daemon=True) for n in range(self.threads)]
        for thread in self._running:
            thread.start()

    def pause(self) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(timeout=60)
        self._running = []

    @property
    def total(self) -> int:
        return sum(self.accepted.values())

    def _post_loop(self, number: int) -> None:
        draw, http, interval = Random(number * 7919 + time.time_ns()), session(), self.threads / self.rate
        headers = {"Authorization": f"ApiKey {self.token}"}
        next_at = time.monotonic()
        while not self._stop.is_set():
            product = draw.choice(self.products)
            self.post(http, headers, product)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def post(self, http: requests.Session, headers: dict[str, str], product: str) -> None:
        body = {"object_class": "fulfillment_request", "product_id": product, "id": f"load-{uuid.uuid4().hex}"}
        while True:
            try:
                response = http.post(EVENTS_URL, json=body, headers=headers, timeout=30)
            except requests.RequestException as exc:
                with self._lock:
                    self.wrong.append(f"{type(exc).__name__}: {exc}")
                return
            with self._lock:
                self.statuses[response.status_code] += 1
                if taken(response):
                    self.accepted[product] += 1
                    return
                if response.status_code != 503 or "Retry-After" not in response.headers:
                    self.wrong.append(f"{response.status_code}: {response.text[:300]}")
                    return
            time.sleep(min(float(response.headers["Retry-After"]), 5.0))


class Received(NamedTuple):
    """One request the sink answered (tests/fleet/sink.py)."""

    at: float
    path: str
    peer: str
    status: int
    digest: str


class SinkLog:
    """The sink's requests, read incrementally."""

    def __init__(self) -> None:
        self.http = session()
        self.entries: list[Received] = []

    def refresh(self) -> list[Received]:
        fresh = self.http.get(f"{SINK_URL}/log", params={"since": len(self.entries)}, timeout=10).json()
        self.entries.extend(Received(*entry) for entry in fresh)
        return self.entries

    def since(self, start: float) -> list[Received]:
        return [entry for entry in self.refresh() if entry.at >= start]

    def in_flight(self) -> list[tuple[str, str]]:
        return [tuple(item) for item in self.http.get(f"{SINK_URL}/flight", timeout=10).json()]

    def successes(self) -> Counter[str]:
        return Counter(entry.path for entry in self.refresh() if entry.status == 200)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without a 2xx answered between ``start`` and ``end``."""
        times = sorted(entry.at for entry in self.refresh() if entry.status == 200 and start <= entry.at <= end)
        marks = [start, *times, end]
        return max(b - a for a, b in itertools.pairwise(marks))
