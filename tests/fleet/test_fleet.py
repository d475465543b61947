"""The fleet test (``make fleet``): hosts as network namespaces, a steady event load, and the
faults a fleet meets, one after another, checking after each that nothing was lost or miscounted
(docs/operations.md, "The fleet test").
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from redis.exceptions import RedisError
from redis.sentinel import Sentinel

from tests.conftest import make_tenant
from tests.engine import api_token
from tests.fleet import checks, hosts
from tests.fleet.checks import Hook, Resends
from tests.fleet.cluster import PG_BIN, SENTINEL_HOSTS, SERVICE, Cluster, database_url, listening, redis_url, wait_for
from tests.fleet.load import EVENTS_URL, Load, SinkLog, session, taken
from tests.fleet.pages import Browser
from webhookapp import create_app
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.services import webhook_changes

HOOKS = 200
WORKER_HOSTS = ("w1", "w2")


def cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "the fleet test makes network namespaces: run it as root (make fleet)"
    if not shutil.which("ip"):
        return "no `ip` command: install iproute2"
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {PG_BIN}: install postgresql-15"
    return None


if reason := cannot_run():
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        hosts.build(list(hosts.HOSTS))
        for host in hosts.HOSTS:
            assert "default" not in hosts.routes_of(host), "the hosts must reach nothing but one another"
        with hosts.inside("client"):
            made.start_postgresql()
            made.start_redis()
            made.migrate()
            made.start_sink()
            yield made
    finally:
        for name, text in made.tracebacks().items():
            print(f"--- {name} ---\n{text}")
        made.close()


@pytest.fixture(scope="module")
def seeded(cluster: Cluster) -> Iterator[tuple[Flask, str, list[Hook], Hook]]:
    """An account with one webhook per product, plus a probe webhook the load never posts to."""
    overrides = {"SQLALCHEMY_DATABASE_URI": database_url(), "REDIS_URL": redis_url(),
                 # The checks' own connections outlive a PostgreSQL failover.
                 "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
                 "WEBHOOK_ALLOWED_NETWORKS": [f"{hosts.address('sink')}/32"]}  # fmt: skip
    app = create_app("testing", overrides)
    with hosts.inside("client"), app.app_context():
        vendor = make_tenant(
            "vendor", "Fleet Vendor", "fleet@fleet.test", [(f"Fleet {n}", False) for n in range(HOOKS + 1)]
        )
        made = []
        for n, product in enumerate(vendor.products):
            url = f"http://{hosts.address('sink')}:9000/h/{n}"
            hook = webhook_changes.create_webhook(vendor.account, {
                "label": f"Fleet {n}", "product_id": product.id, "type_key": "fulfillment_request.event",
                "http_method": "POST", "external_url": url, "active": True})  # fmt: skip
            made.append(Hook(hook.id, product.id, f"/h/{n}"))
        yield app, api_token(vendor.account), made[1:], made[0]
        db.session.remove()
        dispose_engines()


def test_the_fleet_survives_its_faults(cluster: Cluster, seeded, capsys):
    app, token, hook_list, probe = seeded
    started = time.monotonic()
    with hosts.inside("client"), app.app_context():
        run = FleetRun(cluster, token, hook_list, probe)
        cluster.start_web()
        for host in WORKER_HOSTS:
            cluster.start_worker(host)
        wait_for(lambda: listening("web", 8000), "gunicorn", timeout=60)
        run.browser = Browser("fleet@fleet.test")
        try:
            run.phase("warm-up", run.warm_up)
            run.phase("1. w1 cut off holding sends", run.cut_off_w1)
            run.phase("2. Redis master killed", run.kill_redis_master)
            run.phase("4. rolling deploy", run.rolling_deploy)
            run.phase("5. a third worker joins", run.third_worker)
            run.phase("3a. PostgreSQL primary stopped", run.postgresql_stopped)
            run.phase("3b. PostgreSQL primary killed", run.postgresql_killed)
        finally:
            run.load.pause()
    with capsys.disabled():
        print(run.table(time.monotonic() - started))
    assert not run.failures, "\n".join(run.failures)


class FleetRun:
    """The load, the faults, and what was measured after each."""

    def __init__(self, cluster: Cluster, token: str, hook_list: list[Hook], probe: Hook) -> None:
        self.cluster, self.hooks, self.probe = cluster, hook_list, probe
        self.load = Load(token, [hook.product_id for hook in hook_list])
        self.sink = SinkLog()
        self.probes: Counter[str] = Counter()
        self.http = session()
        self.browser: Browser | None = None
        self.pages: dict[str, Counter[int]] = {}  # per phase, the statuses the pages answered in its outage
        self.rows: list[tuple[str, str, float, float, Resends, int, float]] = []
        self.failures: list[str] = []
        self.seen: set[tuple[str, str]] = set()  # tracebacks already reported

    def phase(self, name: str, fault) -> None:
        """Load, the fault (which returns what "flowing again" meant and after how long), then
        the load paused, every trigger finished, and the checks."""
        since, events_before = datetime.now(UTC), self.load.total
        self.load.start()
        start = time.time()
        meaning, recovered = fault()
        self.load.pause()
        settle = checks.wait_settled()
        gap = self.sink.longest_gap(start, time.time())
        found = checks.problems([*self.hooks, self.probe], self.load, self.sink, self.probes)
        tracebacks = self.cluster.tracebacks()
        found += [f"{where}: {text[:1500]}" for where, text in tracebacks.items() if (where, text) not in self.seen]
        self.seen |= set(tracebacks.items())
        found += [f"{process} exited" for process, p in self.cluster.processes.items() if p.poll() is not None]
        self.failures += [f"{name}: {text}" for text in found]
        resent = checks.resends(since, self.sink.since(start))
        self.rows.append((name, meaning, recovered, gap, resent, self.load.total - events_before, settle))
        print(f"{name}: {len(found)} problems", *found[:20], sep="\n  ")

    def post_probe(self) -> None:
        """One probe event; after a 503 the same again (its client id too) until it is taken."""
        body = {"object_class": "fulfillment_request", "product_id": self.probe.product_id,
                "id": f"probe-{uuid.uuid4().hex}"}  # fmt: skip
        headers = {"Authorization": f"ApiKey {self.load.token}"}
        for _ in range(60):
            response = self.http.post(EVENTS_URL, json=body, headers=headers, timeout=30)
            if taken(response):
                self.probes[self.probe.product_id] += 1
            if response.status_code != 503:
                return
            time.sleep(0.5)

    def probe_delivered(self, after: float, timeout: float = 60.0) -> float:
        """Probe events until one is delivered; seconds from ``after`` to that delivery."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.post_probe()
            hits = [
                entry.at
                for entry in self.sink.refresh()
                if entry.path == self.probe.path and entry.at > after and entry.status == 200
            ]
            if hits:
                return min(hits) - after
            time.sleep(0.5)
        raise AssertionError(f"no probe delivered within {timeout:.0f} s")

    def warm_up(self) -> tuple[str, float]:
        time.sleep(8)
        return "first probe delivered", self.probe_delivered(time.time())

    def cut_off_w1(self) -> tuple[str, float]:
        """w1's link down while it has sends in flight; w2 sends them once the leases run out."""
        address = hosts.address("w1")
        wait_for(lambda: any(peer == address for _, peer in self.sink.in_flight()), "w1 sending", timeout=60)
        held = {path for path, peer in self.sink.in_flight() if peer == address}
        hosts.cut("w1")
        cut_at = time.time()
        others = {hosts.address(host) for host in ("w2", "w3")}

        def taken_over() -> bool:
            done = {e.path for e in self.sink.refresh() if e.at > cut_at and e.peer in others and e.status == 200}
            return held <= done

        wait_for(taken_over, "w2 to send what w1 held", timeout=60)
        recovered = time.time() - cut_at
        time.sleep(max(0.0, cut_at + 20 - time.time()))  # cut off for 20 s in all
        hosts.reconnect("w1")
        back = time.time()
        # w1 records what it held, late, and takes work again.
        wait_for(lambda: any(e.peer == address and e.at > back for e in self.sink.refresh()), "w1 back", 60)
        time.sleep(3)
        return f"w1's {len(held)} held sends made by w2", recovered

    def kill_redis_master(self) -> tuple[str, float]:
        time.sleep(3)
        sentinel = Sentinel([(hosts.address(host), 26379) for host in SENTINEL_HOSTS], socket_timeout=1)
        before = self.master(sentinel)
        self.cluster.kill("redis-master")
        killed = time.time()
        recovered = self.probe_delivered(killed)
        wait_for(lambda: self.master(sentinel) not in (before, None), "the Sentinels to promote the replica")
        time.sleep(3)
        return "probe delivered after the kill", recovered

    @staticmethod
    def master(sentinel: Sentinel) -> tuple[str, int] | None:
        try:
            return sentinel.discover_master(SERVICE)
        except RedisError:  # none known while the Sentinels agree on a new one
            return None

    def rolling_deploy(self) -> tuple[str, float]:
        worst = 0.0
        for host in WORKER_HOSTS:
            time.sleep(3)
            name = f"worker-{host}"
            self.cluster.signal(name, signal.SIGTERM)
            stopped = time.time()
            code = self.cluster.wait_exit(name, timeout=30)
            if code != 0:
                self.failures.append(f"rolling deploy: {name} exited with {code} on SIGTERM")
            self.cluster.start_worker(host)
            worst = max(worst, self.probe_delivered(stopped))
        time.sleep(3)
        return "probe delivered after a SIGTERM (worst)", worst

    def third_worker(self) -> tuple[str, float]:
        time.sleep(2)
        self.cluster.start_worker("w3")
        joined, address = time.time(), hosts.address("w3")
        wait_for(lambda: any(e.peer == address and e.at > joined for e in self.sink.refresh()), "w3 sending", 60)
        first = min(e.at for e in self.sink.entries if e.peer == address) - joined
        time.sleep(5)
        return "w3's first send after its start", first

    def postgresql_stopped(self) -> tuple[str, float]:
        """The primary (db) stopped cleanly, the standby (db2) promoted; everyone follows the
        multi-host URL to it. While neither accepts writes the event API must answer 503 with
        Retry-After (the load posts the event again after it), and so must the pages (a form
        always; a page that only reads, unless a server answered it); a 500 fails the run."""
        time.sleep(3)
        self.browser.ready()
        self.cluster.pg_ctl("db", "-m", "fast", "-w", "stop")
        stopped = time.time()
        self.check_pages("3a")
        self.cluster.pg_ctl("db2", "-w", "promote")
        recovered = self.probe_delivered(stopped)
        self.failures += [f"pages: {text}" for text in self.browser.after_outage()]
        return "probe delivered after the stop", recovered

    def postgresql_killed(self) -> tuple[str, float]:
        """db made a synchronous standby of db2, then db2's postmaster killed and db promoted."""
        self.cluster.pg_ctl("db", "-m", "fast", "-w", "stop", check=False)
        self.cluster.start_standby("db", of="db2")
        self.cluster.psql("db2", "ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.cluster.psql("db2", "SELECT pg_reload_conf()")
        time.sleep(3)
        self.browser.ready()
        self.cluster.kill_postgresql("db2")
        killed = time.time()
        self.check_pages("3b")
        self.cluster.pg_ctl("db", "-w", "promote")
        recovered = self.probe_delivered(killed)
        self.failures += [f"pages: {text}" for text in self.browser.after_outage()]
        return "probe delivered after the kill", recovered

    def check_pages(self, phase: str) -> None:
        """The pages while no PostgreSQL server takes writes (tests/fleet/pages.py)."""
        assert self.browser is not None
        self.failures += [f"{phase} pages: {text}" for text in self.browser.during_outage()]
        self.pages[phase] = Counter(self.browser.seen)

    def table(self, elapsed: float) -> str:
        """Per phase: the handlers' own failures (by the status they chose) apart from the re-sends
        the fault caused (by reason: tests/fleet/checks.py, ``Resends``)."""
        lines = ["", f"{'phase':32} {'flowing again':>13} {'longest gap':>11} {'events':>7} {'settled':>8}  "
                     f"{'handlers failed':16} re-sends the fault caused (why)"]  # fmt: skip
        for name, meaning, recovered, gap, why, events, settle in self.rows:
            handlers = ", ".join(f"{count} × {status}" for status, count in sorted(why.handlers.items())) or "none"
            faults = ", ".join(f"{count} {reason}" for reason, count in why.faults.most_common()) or "none"
            lines.append(f"{name:32} {recovered:12.1f}s {gap:10.1f}s {events:7} {settle:7.1f}s  {handlers:16} {faults}")
            seen = self.pages.get(name.split(".")[0])
            if seen is not None:
                other = "".join(f", {n} × {status}" for status, n in seen.items() if status not in (200, 503))
                meaning += f"; pages while no server took writes: {seen[503]} × 503, {seen[200]} × 200{other}"
            lines.append(f"{'':32}   ({meaning})")
        deliveries = sum(1 for entry in self.sink.entries if entry.status == 200)
        accepted, requests = self.load.total + self.probes.total(), len(self.sink.entries)
        lines.append(f"totals: {accepted} events accepted, {requests} requests to the handlers, {deliveries} answered "
                     f"2xx, API statuses {dict(self.load.statuses)}; {elapsed:.0f} s in all")  # fmt: skip
        return "\n".join(lines)
