"""The live endpoints the details page and the list poll (docs/architecture.md, "Live pages"):
regions rendered from the page's own markup, following what a real worker delivers to a real
handler; a 304 for an unchanged page; tenancy; a fixed, small number of statements."""

from __future__ import annotations

import html
import re
import threading
import time
from typing import Any

import pytest
from flask import g

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker, statements
from webhookapp.core.times import isoformat, utcnow
from webhookapp.engine import delivery, runtime
from webhookapp.engine.maintenance import hourly
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook


def live(client, url: str, etag: str | None = None):
    db.session.expire_all()  # requests share the test's session: let them read what the worker wrote
    headers = {"If-None-Match": etag} if etag else {}
    return client.get(url, headers=headers)


def regions(client, url: str) -> dict[str, str]:
    response = live(client, url)
    assert response.status_code == 200, url
    assert response.headers["Cache-Control"] == "private, no-cache"
    body = response.get_json()
    assert response.headers["ETag"] == f'"{body["version"]}"'
    return body["regions"]


def flat(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def on_page(client, url: str, name: str) -> str:
    """The inner HTML of the page's element marked ``data-live="name"`` (no nested elements of its tag)."""
    db.session.expire_all()
    body = client.get(url).get_data(as_text=True)
    match = re.search(rf'<(\w+)[^>]*\bdata-live="{re.escape(name)}"[^>]*>', body)
    assert match, name
    tag, start = match[1], match.end()
    depth, position = 1, start
    for found in re.finditer(rf"<(/?){tag}\b[^>]*>", body[start:]):
        depth += -1 if found[1] else 1
        if depth == 0:
            position = start + found.start()
            break
    return body[start:position]


def without_tokens(markup: str) -> str:
    """``markup`` without its CSRF tokens' values, which differ from one rendering to the next."""
    return re.sub(r'(name="csrf_token" value=)"[^"]*"', r"\1", markup)


def body_rows(markup: str) -> list[str]:
    """The rows of a deliveries region's table body, as text."""
    return [flat(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", markup.split("<tbody>", 1)[-1], re.S)]


def send_event(client, vendor, hook: Webhook) -> None:
    status, _ = post_event(client, api_token(vendor.account), object_class="fulfillment_request",
                           product_id=hook.product_id)  # fmt: skip
    assert status == 202


@pytest.fixture
def hook_fields(handler) -> dict[str, Any]:
    return {"label": "Orders <live>", "external_url": handler.behave("/orders")}


def test_the_details_regions_follow_a_real_delivery(app, client, auth, vendor, handler, hook):
    auth.login()
    url = f"/webhooks/{hook.id}/live"
    before = regions(client, url)
    assert set(before) == {"badge", "retry", "banner", "status", "statistics", "chart"}
    assert flat(before["statistics"]).startswith("Events 0 Triggers 0 Success responses 0")
    etag = live(client, url).headers["ETag"]
    unchanged = live(client, url, etag)
    assert (unchanged.status_code, unchanged.data, unchanged.headers["ETag"]) == (304, b"", etag)

    send_event(client, vendor, hook)
    pending = live(client, url, etag)
    assert pending.status_code == 200  # the event counted and a trigger is due
    assert "Events 1 Triggers 0" in flat(pending.get_json()["regions"]["statistics"])
    assert pending.get_json()["poll_after_ms"] == 1500  # something is about to happen: poll fast
    run_worker(app)
    handler.wait_for("/orders")

    after = live(client, url, pending.headers["ETag"])
    assert after.status_code == 200
    shown = after.get_json()["regions"]
    assert "Events 1 Triggers 1 Success responses 1 Failure responses 0" in flat(shown["statistics"])
    assert "Last success" in flat(shown["statistics"]) and "HTTP 200" in flat(shown["statistics"])
    assert shown["status"] == "<dt>Status</dt><dd>Enabled</dd>"
    assert shown["banner"] == "" and shown["retry"] == ""
    assert after.get_json()["poll_after_ms"] == 2000  # quiet again
    # One markup: the page shows the very regions the endpoint answers.
    for name in ("badge", "status", "statistics"):
        assert on_page(client, f"/webhooks/{hook.id}", name) == shown[name], name


def test_the_statistics_tab_sends_the_chart_with_the_hour_now_running(app, client, auth, vendor, handler, hook):
    auth.login()
    url = f"/webhooks/{hook.id}/live?tab=statistics"
    hours = {isoformat(hourly.floor_hour(utcnow()))}
    quiet = live(client, url).get_json()
    assert quiet["chart_hour"] | {"hour": None} == {"hour": None, "successes": 0, "failures": 0, "p50_ms": None,
                                                    "p95_ms": None}  # fmt: skip
    assert "No delivery attempts in the last 24 hours." in quiet["regions"]["chart"]
    etag = live(client, url).headers["ETag"]
    for n in (1, 2):
        send_event(client, vendor, hook)
        run_worker(app)
        handler.wait_for("/orders", n)
    hours.add(isoformat(hourly.floor_hour(utcnow())))
    changed = live(client, url, etag)
    assert changed.status_code == 200
    now = changed.get_json()["chart_hour"]
    assert now["hour"] in hours and (now["successes"], now["failures"]) == (2, 0)
    assert 0 <= now["p50_ms"] <= now["p95_ms"]
    chart = changed.get_json()["regions"]["chart"]
    bars = re.findall(r'<g class="chart-hour"><title>([^<]*)</title>', chart)
    assert len(bars) == 24 and ": 2 succeeded, 0 failed; median " in bars[-1]  # the last bar: this hour
    assert on_page(client, f"/webhooks/{hook.id}", "chart") == chart  # one markup
    week = live(client, url + "&span=7d").get_json()
    assert "last 7 days" in week["regions"]["chart"] and week["chart_hour"]["successes"] == 2
    assert "chart" not in regions(client, f"/webhooks/{hook.id}/live?tab=deliveries")


def test_the_newest_deliveries_show_failures_and_the_retry(app, client, auth, vendor, handler, hook):
    app.config.update(WEBHOOK_RETRY_BASE=3600)
    handler.behave("/orders", status=503)
    auth.login()
    url = f"/webhooks/{hook.id}/live?tab=deliveries"
    assert "No deliveries yet." in regions(client, url)["deliveries"]
    send_event(client, vendor, hook)
    run_worker(app)
    handler.wait_for("/orders")

    shown = regions(client, url)
    assert set(shown) == {"badge", "retry", "banner", "status", "deliveries", "recovery"}
    assert flat(shown["badge"]) == "Failing"
    assert ">Retry now</button>" in shown["retry"] and f'action="/webhooks/{hook.id}/retry"' in shown["retry"]
    assert "Failing: attempt 2 of 10 at" in flat(shown["status"])
    [row] = body_rows(shown["deliveries"])
    assert re.match(r"\S+ \S+ UTC AT-\d{3}-\d{3} attempt 1 of 10 POST 503", row) and row.endswith("Failure")
    assert on_page(client, f"/webhooks/{hook.id}?tab=deliveries", "deliveries") == shown["deliveries"]
    assert "No success attempts." in regions(client, url + "&outcome=success")["deliveries"]
    # An older page (the page says "paged") is left as it is; so are other tabs' regions.
    assert "deliveries" not in regions(client, url + "&paged=1")
    assert set(regions(client, f"/webhooks/{hook.id}/live?tab=http")) == {"badge", "retry", "banner", "status"}


def test_an_attempt_in_flight_shows_as_sending(app, client, auth, vendor, handler, hook):
    answer = threading.Event()  # the handler answers when the test has seen the send in flight
    handler.behave("/orders", held_until=answer)
    auth.login()
    url = f"/webhooks/{hook.id}/live?tab=deliveries"
    send_event(client, vendor, hook)

    def work() -> None:  # the delivery job's loop, in a thread (RQ's worker wants the main one)
        with app.app_context():
            delivery.drain(runtime.of(app), budget=60)
            db.session.remove()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        handler.wait_for("/orders")
        time.sleep(1.1)  # at least a second in flight (a busy machine only adds)
        shown = regions(client, url)
        status = flat(shown["status"])
        assert re.fullmatch(r"Status Enabled Sending… [1-9]\d* s attempt 1 of 10", status), status
        assert re.search(r'class="elapsed" data-seconds="[1-9]\d*" data-since="\d{4}-\d\d-\d\dT[\d:.]+\+00:00"',
                         shown["status"])  # fmt: skip
        [sending] = body_rows(shown["deliveries"])  # the only attempt so far, still running
        assert re.fullmatch(r"\S+ \S+ UTC attempt 1 of 10 POST — running Sending… [1-9]\d* s", sending), sending
        assert "Sending…" in on_page(client, f"/webhooks/{hook.id}", "status")  # the page says so too
        listed = regions(client, f"/webhooks/live?ids={hook.id}")
        assert "Sending…" in listed[f"status:{hook.id}"]
    finally:
        answer.set()
        worker.join(20)
    shown = regions(client, url)
    assert "Sending" not in shown["status"] + shown["deliveries"]
    assert "attempt 1 of 10 POST 200" in flat(shown["deliveries"])


def test_regions_are_escaped_like_the_page(client, auth, hook):
    hook.out_of_order = True
    hook.last_failure_info = {"status": None, "error": "<b>refused</b>", "duration_ms": 1.0}
    db.session.commit()
    auth.login()
    banner = regions(client, f"/webhooks/{hook.id}/live")["banner"]
    assert "failed (&lt;b&gt;refused&lt;/b&gt;)" in banner and "<b>" not in banner
    assert 'role="alert"' in banner
    assert without_tokens(on_page(client, f"/webhooks/{hook.id}", "banner")) == without_tokens(banner)


def test_another_accounts_webhook_is_a_404(client, auth, vendor, other_vendor):
    theirs = make_webhook(other_vendor)
    auth.login()
    assert client.get(f"/webhooks/{theirs.id}/live").status_code == 404
    assert client.get("/webhooks/WH-000-000-000/live").status_code == 404


def test_logged_out_polls_go_to_the_login_page(client, hook):
    response = client.get(f"/webhooks/{hook.id}/live")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_list_answers_the_accounts_own_ids_only_and_a_page_of_them(app, client, auth, vendor, other_vendor):
    app.config["WEBHOOKS_PER_PAGE"] = 3
    mine = [make_webhook(vendor, label=f"Mine {n}") for n in range(4)]
    theirs = make_webhook(other_vendor)
    mine[1].out_of_order = True
    db.session.commit()
    auth.login()
    ids = [mine[0].id, theirs.id, mine[1].id, "nonsense", mine[2].id, mine[3].id]
    shown = regions(client, "/webhooks/live?ids=" + ",".join(ids))
    # The first three asked for (a page's worth); another account's id and unknown ids are left out.
    answered = {f"{part}:{webhook.id}" for part in ("status", "health", "menu") for webhook in mine[:2]}
    assert set(shown) == answered
    assert flat(shown[f"status:{mine[1].id}"]) == "Out of order"
    assert flat(shown[f"health:{mine[0].id}"]) == "—"
    assert on_page(client, "/webhooks", f"status:{mine[1].id}") == shown[f"status:{mine[1].id}"]
    assert regions(client, "/webhooks/live") == {} and regions(client, "/webhooks/live?ids=,,") == {}

    url = f"/webhooks/live?ids={mine[0].id},{mine[1].id}"
    etag = live(client, url).headers["ETag"]
    assert live(client, url, etag).status_code == 304
    mine[0].active = False
    db.session.commit()
    changed = live(client, url, etag)
    assert changed.status_code == 200 and flat(changed.get_json()["regions"][f"status:{mine[0].id}"]) == "Disabled"


def test_the_lists_row_menu_follows_the_webhook(client, auth, vendor):
    hook = make_webhook(vendor)
    hook.out_of_order = True
    db.session.commit()
    auth.login()
    page = "/webhooks?status=out_of_order"
    url = f"/webhooks/live?ids={hook.id}&next=" + page.replace("?", "%3F").replace("=", "%3D")
    menu = regions(client, url)[f"menu:{hook.id}"]
    assert flat(menu) == "Retry now Enable Delete"
    assert without_tokens(menu) == without_tokens(on_page(client, page, f"menu:{hook.id}"))  # the page's markup
    assert f'name="next" value="{html.escape(page)}"' in menu
    hook.out_of_order = False  # it recovered
    db.session.commit()
    assert flat(regions(client, url)[f"menu:{hook.id}"]) == "Disable Delete"
    elsewhere = regions(client, f"/webhooks/live?ids={hook.id}&next=https://evil.example/")[f"menu:{hook.id}"]
    assert 'value="https://evil.example/"' not in elsewhere and 'value="/webhooks"' in elsewhere


def test_the_list_follows_a_real_delivery(app, client, auth, vendor, handler, hook):
    auth.login()
    url = f"/webhooks/live?ids={hook.id}"
    etag = live(client, url).headers["ETag"]
    send_event(client, vendor, hook)
    run_worker(app)
    handler.wait_for("/orders")
    changed = live(client, url, etag)
    assert changed.status_code == 200
    assert flat(changed.get_json()["regions"][f"health:{hook.id}"]) == "100 % of 1"


def counted(client, url: str, etag: str | None = None) -> tuple[int, int]:
    """The response's status and the statements it ran, with nothing cached in the session (and
    the user loaded again, as in a request of its own)."""
    db.session.remove()
    g.pop("_login_user", None)
    with statements() as seen:
        response = client.get(url, headers={"If-None-Match": etag} if etag else {})
    return response.status_code, len(seen)


def test_a_poll_costs_a_few_statements_and_an_unchanged_one_fewer(client, auth, vendor, hook):
    others = [make_webhook(vendor, label=f"Hook {n}").id for n in range(5)]
    auth.login()
    url = f"/webhooks/{hook.id}/live"
    etag = live(client, url).headers["ETag"]
    assert counted(client, url, etag) == (304, 2)  # the user, the webhook with its newest attempt id
    assert counted(client, url) == (200, 5)  # the statistics nothing more; the chart its hours, as the page
    assert counted(client, url + "?tab=deliveries") == (200, 5)  # the page's count and rows, the newest recovery
    for ids in ([hook.id], [hook.id, *others]):
        listed = f"/webhooks/live?ids={','.join(ids)}"
        etag = live(client, listed).headers["ETag"]
        assert counted(client, listed, etag) == (304, 3)  # the user, the webhooks, their rates
        assert counted(client, listed) == (200, 3)
