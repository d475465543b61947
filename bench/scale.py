"""Scale benchmark: every page and management-API call on a production-sized database, next to
the same call on a small one.

Deep pages are asked for at the same depth in both: page 500 of the big account's 800 webhook
pages is page 5 of 8 in a database a hundred times smaller, the last 100 attempts of the heavy
webhook are at offset 99,900 in the big database and 900 in the small one, and the audit
trail's offset page at 10,000 of the big account's 560,000 entries and 100 of its 5,600.

    .venv/bin/python -m bench.scale --big-url postgresql+psycopg://postgres@127.0.0.1:5432/scale_big \\
        --small-url postgresql+psycopg://postgres@127.0.0.1:5432/scale_small [--size 1] [--load] [--prune]

The data sets are loaded in SQL by :mod:`bench.scale_data` (``--size`` 1 is 100,000 webhooks and
10 million attempts; loading it takes some minutes), once: a later run reuses a database that
holds a complete load of the same size, unless ``--load``. The small database is the same shape
at ``--small-size``.

Each database gets a gunicorn of its own (the real app, 2 workers × 4 threads). The requests of
:func:`requests_for` are sent ``--repeat`` times each, small and big interleaved, after two
warm-up rounds (warm cache: a cold cache is the disk's story, not the code's); the table shows
p50 and p95 in ms, the ratio of the p95s, and whether the target is met (p95 under 100 ms, or
200 ms for a delete, and within 2× of the small database). Deleting a webhook is timed on a copy
of the heavy webhook made before each request; the background purge that follows is timed too.
Claiming due triggers and finding the next due time are timed in this process, as the worker
sees them and as PostgreSQL spends them (target 1 ms). Then 30 events on one product's webhooks
show how many of the webhook row updates PostgreSQL made in place (HOT) and how much the
matching index grew. The chart's own figures (cold, warm, the hourly job) are
:mod:`bench.scale_chart`'s.

``--prune`` then prunes the big database's attempts older than 15 days, as the hourly job does,
and prints its time, its longest transaction, the WAL it wrote and the dead rows it left. It
deletes half of the data: the next run loads again.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import text

from bench import scale_data
from bench.common import (
    engine_env,
    free_port,
    percentile,
    print_table,
    private_redis,
    run_main,
    start_child,
    temp_dir,
    verdict,
    wait_for_port,
)
from bench.scale_chart import chart_report
from bench.scale_data import EMAIL
from bench.scale_timing import (
    claim_timings,
    copy_heavy_webhook,
    deep_delivery_link,
    depths,
    end_recoveries,
    hot_report,
    prune_report,
    purge_deleted,
)

TARGET_MS = 100.0
DELETE_TARGET_MS = 200.0


@dataclass
class Site:
    """One database with its own gunicorn and a logged-in browser session."""

    name: str
    url: str
    base: str = ""
    session: requests.Session = field(default_factory=requests.Session)
    api: dict[str, str] = field(default_factory=dict)
    depth: dict[str, int | str] = field(default_factory=dict)


@dataclass
class Request:
    name: str
    send: Callable[[Site], requests.Response]
    prepare: Callable[[Site], None] | None = None
    target_ms: float = TARGET_MS


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-url", required=True, help="PostgreSQL URL of a database of your own (big data set)")
    parser.add_argument("--small-url", required=True, help="PostgreSQL URL of another one (small data set)")
    parser.add_argument("--size", type=float, default=1.0, help="the big data set's size (1 = 10 M attempts)")
    parser.add_argument("--small-size", type=float, default=0.01, help="the small data set's size (0.01)")
    parser.add_argument("--load", action="store_true", help="load both data sets again even if present")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per request and database (20)")
    parser.add_argument("--prune", action="store_true", help="measure pruning 15 days at the end (destructive)")
    parser.add_argument("--legacy-pages", action="store_true", help="numbered delivery pages (an older tree)")
    return parser.parse_args(argv)


def ensure_loaded(url: str, size: float, force: bool) -> None:
    """Load ``url`` unless it holds this size already; then ``VACUUM ANALYZE`` it, as autovacuum
    would have (it is off on the benchmark's server), since a run leaves millions of dead rows
    behind (the deleted copies' attempts, the hourly job's sums); and a ``CHECKPOINT``, so that
    the pages the vacuum dirtied are not written out while the requests are timed."""
    if not force and scale_data.loaded_size(url) == size:
        engine = scale_data.engine_for(url)
        scale_data.vacuum(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("CHECKPOINT"))
        engine.dispose()
        return
    print(f"loading size {size:g} into {url.rsplit('/', 1)[-1]} …", flush=True)
    began = time.monotonic()
    scale_data.load(url, size, say=lambda line: print(line, flush=True))
    print(f"  loaded in {time.monotonic() - began:.0f} s", flush=True)


def log_in(site: Site) -> None:
    page = site.session.get(f"{site.base}/login", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text) or re.search(
        r'name="csrf_token" value="([^"]+)"', page.text
    )
    form = {"email": scale_data.EMAIL, "password": scale_data.PASSWORD, "csrf_token": token.group(1) if token else ""}
    answer = site.session.post(f"{site.base}/login", data=form, timeout=10, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"{site.name}: logging in answered {answer.status_code}")
    site.api = {"Authorization": f"ApiKey {scale_data.PLAIN_TOKEN}"}


def page(path: str) -> Callable[[Site], requests.Response]:
    """GET a page; ``{name}`` in ``path`` is the site's depth of that name (:func:`depths`)."""
    return lambda site: site.session.get(f"{site.base}{path.format(**site.depth)}", timeout=60)


def api(path: str, method: str = "GET", **options) -> Callable[[Site], requests.Response]:
    return lambda site: site.session.request(
        method, f"{site.base}/public/v1{path.format(**site.depth)}", headers=site.api, timeout=60, **options
    )


def api_as(token: str, path: str) -> Callable[[Site], requests.Response]:
    """GET ``path`` of the API with another account's token."""
    return lambda site: site.session.get(
        f"{site.base}/public/v1{path.format(**site.depth)}", headers={"Authorization": f"ApiKey {token}"}, timeout=60
    )


def event_requests(heavy: str) -> list[Request]:
    """Every read of events: the feed by account (its own and the platform's events, or the
    platform's alone), by webhook, by object id, by time; one event; the Events tab, the events an
    attempt carried; the list searched by each kind of an event's ids."""
    fed = scale_data.FED_TOKEN
    return [
        Request("API events, first page (the big account)", api("/events")),
        Request("API events, first page (an account the platform posts for)", api_as(fed, "/events")),
        Request("API events, offset 1,000 (the platform posts for it)", api_as(fed, "/events?limit=100&offset=1000")),
        Request("API events, eq(webhook.id)", api(f"/events?eq(webhook.id,{heavy})")),
        Request("API events, eq(object_id)", api("/events?eq(object_id,{object_id})")),
        Request("API events, a day a week ago", api("/events?ge(created_at,{day_from})&lt(created_at,{day_to})")),
        Request("API event", api("/events/{event}")),
        Request("details page, Events tab", page(f"/webhooks/{heavy}?tab=events")),
        Request("attempt page, the events it carried", page(f"/webhooks/{heavy}/attempts/{{carrier}}")),
        Request("webhooks list, search by an event id", page("/webhooks?q={event}")),
        Request("webhooks list, search by a client id", page("/webhooks?q={client_id}")),
        Request("webhooks list, search by an object id", page("/webhooks?q={object_id}")),
        Request("webhooks list, live cells", page("/webhooks/live?ids={listed_ids}&next=/webhooks")),
        Request("details page, live regions", page(f"/webhooks/{heavy}/live?tab=deliveries")),
        Request("/metrics", page("/metrics")),
    ]


def recovery_requests(heavy: str) -> list[Request]:
    """Recover: starting one over the heavy webhook's month (it counts the failed triggers of the
    range), its progress, and the Deliveries tab while it runs (no worker sends it here)."""
    since = (datetime.now(UTC) - timedelta(days=scale_data.DAYS + 1)).replace(microsecond=0).isoformat()

    def start(site: Site) -> requests.Response:
        answer = api(f"/notifications/webhooks/{heavy}/recover", "POST", json={"since": since})(site)
        site.depth["recovery"] = answer.json().get("id", 0) if answer.status_code == 202 else 0
        return answer

    return [
        Request("API recover, the heavy webhook's month", start, prepare=lambda site: end_recoveries(site.url, heavy)),
        Request("API recovery, progress", api(f"/notifications/webhooks/{heavy}/recoveries/{{recovery}}")),
        Request("details page, a recovery running", page(f"/webhooks/{heavy}")),
    ]


def older_link(hops: int, legacy: bool) -> Callable[[Site], requests.Response]:
    """The delivery page ``hops`` pages back, by the link the Older buttons lead to."""
    links: dict[str, str] = {}

    def send(site: Site) -> requests.Response:
        if site.name not in links:
            links[site.name] = deep_delivery_link(site.url, hops, legacy)
        return site.session.get(f"{site.base}{links[site.name]}", timeout=60)

    return send


def requests_for(heavy: str, legacy: bool = False) -> list[Request]:
    """The requests of the table. ``legacy``: numbered delivery pages, for a tree before keyset pages."""
    details = f"/webhooks/{heavy}"
    return [
        Request("details page, newest deliveries", page(details)),
        Request("details page, deliveries 2,500 pages back", older_link(2_500, legacy)),
        Request("details page, oldest deliveries", page(f"{details}?page=5000" if legacy else f"{details}?at=oldest")),
        Request("details page, failures only", page(f"{details}?outcome=failure")),
        Request("details page, chart of 7 days", page(f"{details}?tab=statistics&span=7d")),
        Request(
            "details page, failures, oldest",
            page(f"{details}?outcome=failure&page=250" if legacy else f"{details}?outcome=failure&at=oldest"),
        ),
        Request("webhooks list, first page", page("/webhooks")),
        Request("webhooks list, page 500 of 800", page("/webhooks?page={list_page}")),
        Request("webhooks list, search", page("/webhooks?q=hook+19")),
        Request("API webhook", api(f"/notifications/webhooks/{heavy}")),
        Request("API webhooks, limit=1", api("/notifications/webhooks?limit=1")),
        Request(
            "API webhooks, offset 19,000 of 20,000", api("/notifications/webhooks?limit=100&offset={webhook_offset}")
        ),
        Request("API attempts, first 100", api(f"/notifications/webhooks/{heavy}/attempts")),
        Request(
            "API attempts, last 100 (offset 99,900)",
            api(f"/notifications/webhooks/{heavy}/attempts?limit=100&offset={{attempt_offset}}"),
        ),
        Request("API attempts, eq(success,false)", api(f"/notifications/webhooks/{heavy}/attempts?eq(success,false)")),
        Request("Activity page, newest", page("/activity")),
        Request("Activity page, one webhook", page(f"/activity?object={heavy}")),
        Request("Activity page, webhook.updated by the user", page(f"/activity?action=webhook.updated&actor={EMAIL}")),
        Request("Activity page, a day a week ago", page("/activity?since={week_ago}&until={week_ago}")),
        Request("Activity page, oldest", page("/activity?at=oldest")),
        Request("details page, Activity tab", page(f"{details}?tab=activity")),
        Request("API audit, first 100", api("/audit")),
        Request("API audit, offset 10,000 (100 of the small)", api("/audit?limit=100&offset={audit_offset}")),
        Request("API audit, eq(object.id)", api(f"/audit?eq(object.id,{heavy})")),
        Request("API audit, eq(action)&ge(at)", api("/audit?eq(action,webhook.updated)&ge(at,{week_ago})")),
        Request("API audit entry", api("/audit/{audit_entry}")),
        *event_requests(heavy),
        *([] if legacy else recovery_requests(heavy)),
        Request(
            "API event (matches 133 webhooks)",
            api("/events", "POST", json={"object_class": "billing_request", "product_id": "PRD-000000001"}),
        ),
        Request(
            "API delete webhook (100k attempts)",
            lambda site: api(f"/notifications/webhooks/{site.victim}", "DELETE")(site),  # type: ignore[attr-defined]
            prepare=lambda site: setattr(site, "victim", copy_heavy_webhook(site.url)),
            target_ms=DELETE_TARGET_MS,
        ),
    ]


def measure(sites: list[Site], plan: list[Request], repeat: int) -> dict[tuple[str, str], list[float]]:
    timings: dict[tuple[str, str], list[float]] = {}
    for round_ in range(repeat + 2):
        for request in plan:
            for site in sites:
                if request.prepare:
                    request.prepare(site)
                began = time.perf_counter()
                answer = request.send(site)
                elapsed = (time.perf_counter() - began) * 1000
                if answer.status_code >= 400:
                    raise RuntimeError(f"{site.name}: {request.name}: HTTP {answer.status_code}: {answer.text[:300]}")
                if round_ >= 2:
                    timings.setdefault((request.name, site.name), []).append(elapsed)
    return timings


def report(plan: list[Request], timings: dict[tuple[str, str], list[float]]) -> None:
    rows = []
    for request in plan:
        small, big = timings[(request.name, "small")], timings[(request.name, "big")]
        small_p95, big_p95 = percentile(small, 0.95), percentile(big, 0.95)
        ratio = big_p95 / small_p95
        met = big_p95 < request.target_ms and ratio <= 2.0
        rows.append(
            [request.name, f"{statistics.median(small):.1f}", f"{small_p95:.1f}", f"{statistics.median(big):.1f}",
             f"{big_p95:.1f}", f"{ratio:.2f}", verdict(met)]
        )  # fmt: skip
    print_table(
        "Requests, warm cache (ms)",
        ["request", "small p50", "small p95", "big p50", "big p95", "ratio", "target"],
        rows,
    )


def run(args: argparse.Namespace) -> int:
    ensure_loaded(args.small_url, args.small_size, args.load)
    ensure_loaded(args.big_url, args.size, args.load)
    sites = [Site("small", args.small_url), Site("big", args.big_url)]
    with contextlib.ExitStack() as stack:
        logs = temp_dir(stack, "webhookapp-bench-scale-")
        redis = private_redis(stack)
        for site in sites:
            port = free_port()
            env = engine_env(site.url, redis.url, WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")
            command = [
                sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread", "--threads", "4",
                "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app",
            ]  # fmt: skip
            child = start_child(stack, f"gunicorn-{site.name}", command, env, logs)
            wait_for_port(port, 60, f"gunicorn on {site.name}", child)
            site.base = f"http://127.0.0.1:{port}"
            site.depth = depths(site.url)
            log_in(site)
        plan = requests_for(scale_data.HEAVY_WEBHOOK, args.legacy_pages)
        timings = measure(sites, plan, args.repeat)
        report(plan, timings)
        rows = []
        for site in sites:
            purged = purge_deleted(site.url)
            rows.append([f"background purge of the deleted copies ({site.name})", f"{purged:.1f} s"])
            for name, values in claim_timings(site.url, args.repeat).items():
                rows.append([f"{name} ({site.name}), p95", f"{percentile(values, 0.95):.3f} ms"])
        rows += [[f"{name} (big)", value] for name, value in chart_report(args.big_url, args.repeat)]
        print_table("Engine, in process", ["what", "time"], rows)
        print_table("Webhook rows under a stream of events (big)", ["what", "value"], hot_report(args.big_url))
        if args.prune:
            print_table("Pruning 15 days of the big database", ["what", "value"], prune_report(args.big_url))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
