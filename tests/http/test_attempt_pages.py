"""Deliveries on the details page, the attempt page, retention and Trigger Now
(docs/architecture.md, "Trigger state")."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from tests.conftest import make_webhook
from tests.engine import run_worker
from webhookapp.core.times import utcnow
from webhookapp.engine import maintenance
from webhookapp.infra import paging
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

ROW = re.compile(
    r'<td data-label="Time"><a href="/webhooks/(?P<hook>[^/]+)/attempts/(?P<id>\d+)">(?P<time>[^<]+)</a></td>\s*'
    r'<td data-label="Attempt"><span class="mono">(?P<reference>AT-[\d-]+)</span> '
    r'<span class="muted small">attempt (?P<number>\d+) of 10</span></td>\s*'
    r'<td data-label="Method" class="mono">(?P<method>\w+)</td>\s*'
    r'<td data-label="Status">(?P<status>[^<]+)</td>\s*'
    r'<td data-label="Duration">(?P<duration>\d+) ms</td>\s*'
    r'<td data-label="Outcome"><span class="badge badge-\w+">(?P<outcome>\w+)</span></td>'
)


def page(client, url: str) -> str:
    db.session.expire_all()  # requests share the test's session: let them read what the worker wrote
    response = client.get(url)
    assert response.status_code == 200, url
    return html.unescape(response.get_data(as_text=True))


def main_part(text: str) -> str:
    return text.split('<main id="main"', 1)[1]


def delivery_rows(client, url: str) -> list[dict[str, str]]:
    return [match.groupdict() for match in ROW.finditer(main_part(page(client, url)))]


def stored(hook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, hook_id)


def attempts_of(hook_id: str) -> list[Attempt]:
    db.session.expire_all()
    query = db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)
    return list(db.session.scalars(query))


def trigger(app, client, hook_id: str) -> None:
    response = client.post(f"/webhooks/{hook_id}/trigger")
    assert response.status_code == 302
    run_worker(app)


@pytest.fixture
def delivered(app, client, auth, vendor, handler) -> Webhook:
    """A webhook with three attempts, oldest first: failure (500), success (200), failure (500)."""
    hook = make_webhook(vendor, external_url=handler.behave("/flaky"), data={"purpose": "demo"})
    auth.login()
    for expected, status in enumerate((500, 200, 500), start=1):
        body = b'{"error": "db down"}' if status == 500 else b'{"ok": true}'
        handler.behave("/flaky", status=status, body=body, headers={"X-Handler": "flaky"})
        trigger(app, client, hook.id)
        handler.wait_for("/flaky", expected)
    assert client.get("/webhooks").status_code == 200  # shows (and so clears) the flash messages
    return hook


def test_deliveries_are_listed_newest_first_with_their_details(client, delivered):
    rows = delivery_rows(client, f"/webhooks/{delivered.id}?tab=deliveries")
    attempts = attempts_of(delivered.id)
    assert [int(row["id"]) for row in rows] == [a.id for a in reversed(attempts)]
    assert {row["hook"] for row in rows} == {delivered.id}
    assert [(row["number"], row["method"], row["status"], row["outcome"]) for row in rows] == [
        ("1", "POST", "500", "Failure"),
        ("2", "POST", "200", "Success"),
        ("1", "POST", "500", "Failure"),
    ]
    for row, attempt in zip(rows, reversed(attempts), strict=True):
        assert row["time"] == attempt.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert abs(int(row["duration"]) - attempt.duration_ms) <= 0.5


@pytest.mark.parametrize(("outcome", "expected"), [("success", ["Success"]), ("failure", ["Failure", "Failure"])])
def test_deliveries_can_be_filtered_by_outcome(client, delivered, outcome, expected):
    rows = delivery_rows(client, f"/webhooks/{delivered.id}?tab=deliveries&outcome={outcome}")
    assert [row["outcome"] for row in rows] == expected


def test_a_filter_without_matches_says_so(client, auth, vendor):
    hook = make_webhook(vendor)
    auth.login()
    assert "No success attempts." in page(client, f"/webhooks/{hook.id}?tab=deliveries&outcome=success")
    assert "No deliveries yet." in page(client, f"/webhooks/{hook.id}?tab=deliveries")


LINK = re.compile(r'<a class="btn btn-secondary btn-small"(?: rel="\w+")? href="([^"]+)">([^<]+)</a>')


def nav_links(text: str) -> dict[str, str]:
    """The delivery pages' links by label: « Newest, ← Newer, Older →, Oldest »."""
    return {label.strip("«→← »"): href for href, label in LINK.findall(text)}


def add_attempts(hook: Webhook, count: int, *, same_second: int = 1) -> None:
    """``count`` attempts numbered 1 (oldest) to ``count``; ``same_second`` of them share each second."""
    start = utcnow() - timedelta(hours=1)
    for n in range(count):
        db.session.add(
            Attempt(webhook_id=hook.id, number=n + 1, started_at=start + timedelta(seconds=n // same_second),
                    duration_ms=5.0, success=n % 3 != 0, request_method="POST", request_url="https://h.test/",
                    request_headers={}, response_status=200 if n % 3 else 500)
        )  # fmt: skip
    db.session.commit()


def test_deliveries_page_twenty_at_a_time_by_older_and_newer_links(client, auth, vendor):
    hook = make_webhook(vendor)
    add_attempts(hook, 45, same_second=3)  # ties on the time: the id orders them
    auth.login()
    first = main_part(page(client, f"/webhooks/{hook.id}?tab=deliveries"))
    assert "1–20 of 45" in first and set(nav_links(first)) == {"Older", "Oldest"}
    second = main_part(page(client, nav_links(first)["Older"]))
    assert "21–40 of 45" in second and set(nav_links(second)) == {"Newest", "Newer", "Older", "Oldest"}
    third = main_part(page(client, nav_links(second)["Older"]))
    assert "41–45 of 45" in third and set(nav_links(third)) == {"Newest", "Newer"}
    numbers = [int(row["number"]) for text in (first, second, third) for row in ROW.finditer(text)]
    assert numbers == list(range(45, 0, -1))

    back = main_part(page(client, nav_links(third)["Newer"]))
    assert [row["number"] for row in ROW.finditer(back)] == [row["number"] for row in ROW.finditer(second)]
    assert "21–40 of 45" in back
    assert [row["number"] for row in ROW.finditer(main_part(page(client, nav_links(back)["Newer"])))] == [
        str(n) for n in range(45, 25, -1)]  # fmt: skip
    oldest = main_part(page(client, nav_links(first)["Oldest"]))
    assert "26–45 of 45" in oldest and [int(row["number"]) for row in ROW.finditer(oldest)] == list(range(20, 0, -1))
    assert set(nav_links(oldest)) == {"Newest", "Newer"}


def test_the_outcome_filter_pages_too(client, auth, vendor):
    hook = make_webhook(vendor)
    add_attempts(hook, 90)  # every third one fails: 30 failures
    auth.login()
    first = main_part(page(client, f"/webhooks/{hook.id}?tab=deliveries&outcome=failure"))
    assert "1–20 of 30" in first and "outcome=failure" in nav_links(first)["Older"]
    second = main_part(page(client, nav_links(first)["Older"]))
    numbers = [int(row["number"]) for text in (first, second) for row in ROW.finditer(text)]
    assert numbers == list(range(88, 0, -3)) and "21–30 of 30" in second


def test_the_failures_filter_shows_what_went_wrong(client, auth, vendor):
    hook = make_webhook(vendor)
    start = utcnow() - timedelta(minutes=5)
    for n, (status, error) in enumerate([(500, "The handler answered HTTP 500."),
                                         (None, "Connection refused by 127.0.0.1:1"), (200, None)]):  # fmt: skip
        db.session.add(Attempt(webhook_id=hook.id, number=n + 1, started_at=start + timedelta(seconds=n),
                               duration_ms=5.0, success=status == 200, request_method="POST",
                               request_url="https://h.test/", request_headers={}, response_status=status,
                               error=error))  # fmt: skip
    db.session.commit()
    auth.login()
    failures = main_part(page(client, f"/webhooks/{hook.id}?tab=deliveries&outcome=failure"))
    assert '<th scope="col">Error</th>' in failures
    cells = re.findall(r'<td data-label="(Status|Error)"[^>]*>([^<]*)</td>', failures)
    assert cells == [("Status", "No answer"), ("Error", "Connection refused by 127.0.0.1:1"),
                     ("Status", "500"), ("Error", "The handler answered HTTP 500.")]  # fmt: skip
    every = main_part(page(client, f"/webhooks/{hook.id}?tab=deliveries"))
    assert '<th scope="col">Error</th>' not in every and 'data-label="Error"' not in every
    assert [row["status"] for row in ROW.finditer(every)] == ["200", "500"]  # and the one without an answer:
    assert '<td data-label="Status" class="no-answer">No answer</td>' in every


@pytest.mark.parametrize("cursor", ["garbage", "99999999999999999999-1", "-5-3", "1-1&n=-4", "1e9-2"])
def test_a_cursor_that_is_not_one_shows_the_newest_page_or_nothing_older(client, auth, vendor, cursor):
    hook = make_webhook(vendor)
    add_attempts(hook, 25)
    auth.login()
    response = client.get(f"/webhooks/{hook.id}?tab=deliveries&before={cursor}")
    assert response.status_code == 200
    rows = list(ROW.finditer(main_part(html.unescape(response.get_data(as_text=True)))))
    assert [int(row["number"]) for row in rows] in (list(range(25, 5, -1)), [])


def test_past_the_count_bound_the_page_says_so(monkeypatch, client, auth, vendor):
    monkeypatch.setattr(paging, "COUNT_BOUND", 30)
    hook = make_webhook(vendor)
    add_attempts(hook, 45)
    auth.login()
    first = main_part(page(client, f"/webhooks/{hook.id}?tab=deliveries"))
    assert "1–20 of 30+" in first
    oldest = main_part(page(client, nav_links(first)["Oldest"]))
    assert "20 of 30+" in oldest and [int(row["number"]) for row in ROW.finditer(oldest)] == list(range(20, 0, -1))


def test_statistics_equal_the_database_counts(client, delivered):
    text = main_part(page(client, f"/webhooks/{delivered.id}"))
    figures = dict(re.findall(r"<div><dt>([^<]+)</dt><dd>(\d+)</dd>", text))
    hook, attempts = stored(delivered.id), attempts_of(delivered.id)
    assert figures == {
        "Events": "3",
        "Triggers": str(len(attempts)),
        "Success responses": str(sum(a.success for a in attempts)),
        "Failure responses": str(sum(not a.success for a in attempts)),
        "Failures since last success": "1",
    }
    assert (hook.events_count, hook.triggers_count, hook.success_count, hook.failure_count) == (3, 3, 1, 2)
    parts = re.search(r'<dd class="stat-parts">.*?(\d+) posted</a> ·\s*<a [^>]+>(\d+) Trigger Now</a></dd>', text)
    assert parts and parts.groups() == ("0", "3")  # three presses of Trigger Now, no event posted


def test_last_success_and_last_failure_link_to_their_attempts(client, delivered):
    text = main_part(page(client, f"/webhooks/{delivered.id}"))
    _first_failure, success, last_failure = attempts_of(delivered.id)
    links = dict(re.findall(r"<dt>(Last success|Last failure)</dt><dd>\s*<a href=\"([^\"]+)\">", text))
    assert links == {
        "Last success": f"/webhooks/{delivered.id}/attempts/{success.id}",
        "Last failure": f"/webhooks/{delivered.id}/attempts/{last_failure.id}",
    }
    assert "HTTP 500" in text and "The handler answered HTTP 500." in text


def test_the_attempt_page_shows_the_request_with_the_signature_redacted(client, delivered, handler):
    success = attempts_of(delivered.id)[1]
    sent = handler.requests_to("/flaky")[1]
    jwt_text = sent.headers["Authorization"].removeprefix("Bearer ")
    header, claims, signature = jwt_text.split(".")
    text = page(client, f"/webhooks/{delivered.id}/attempts/{success.id}")
    assert signature not in text
    assert f"Bearer {header}.{claims}.REDACTED" in text
    assert f"POST</span> {handler.url}/flaky" in text
    assert "User-Agent" in text and "webhookapp/" in text and "application/json" in text
    assert f'"webhook_id": "{delivered.id}"' in text and '"purpose": "demo"' in text  # the JSON body, indented
    assert "HTTP <strong>200</strong>" in text and '"ok": true' in text
    assert "flash flash-error" not in main_part(text)


def test_the_attempt_page_shows_the_response_and_error_of_a_failure(client, delivered):
    failure = attempts_of(delivered.id)[0]
    text = main_part(page(client, f"/webhooks/{delivered.id}/attempts/{failure.id}"))
    assert f"Attempt {failure.reference}" in text and "attempt 1 of 10" in text and "Failure" in text
    assert '<p class="flash flash-error">The handler answered HTTP 500.</p>' in text
    assert "HTTP <strong>500</strong>" in text
    assert "X-Handler" in text and "flaky" in text
    assert '"error": "db down"' in text


def test_another_accounts_user_cannot_see_attempts(client, auth, delivered, other_vendor):
    attempt = attempts_of(delivered.id)[0]
    theirs = make_webhook(other_vendor)
    auth.logout()
    auth.login(other_vendor.email)
    assert client.get(f"/webhooks/{delivered.id}/attempts/{attempt.id}").status_code == 404
    assert client.get(f"/webhooks/{theirs.id}/attempts/{attempt.id}").status_code == 404
    assert client.get(f"/webhooks/{delivered.id}").status_code == 404


def test_an_attempt_of_another_webhook_is_404_under_this_one(client, vendor, delivered):
    sibling = make_webhook(vendor, label="sibling")
    attempt = attempts_of(delivered.id)[0]
    assert client.get(f"/webhooks/{sibling.id}/attempts/{attempt.id}").status_code == 404
    assert client.get(f"/webhooks/{delivered.id}/attempts/999999").status_code == 404


def test_pruning_deletes_old_attempts_but_keeps_the_statistics(app, client, delivered):
    app.config["WEBHOOK_ATTEMPT_RETENTION_DAYS"] = 30
    old, kept_recent, recent = attempts_of(delivered.id)
    old_id, kept_ids = old.id, [kept_recent.id, recent.id]
    old.started_at = utcnow() - timedelta(days=31)
    kept_recent.started_at = utcnow() - timedelta(days=29)
    db.session.commit()
    before = stored(delivered.id)
    figures = (before.events_count, before.triggers_count, before.success_count, before.failure_count)
    infos = (before.last_success_info, before.last_failure_info)

    assert maintenance.prune() == {
        "attempts": 1,
        "events": 0,
        "event_feeds": 0,
        "audit_entries": 0,
        "attempt_hours": 0,
        "deleted_webhook_attempts": 0,
    }

    assert [a.id for a in attempts_of(delivered.id)] == kept_ids
    after = stored(delivered.id)
    assert (after.events_count, after.triggers_count, after.success_count, after.failure_count) == figures
    assert (after.last_success_info, after.last_failure_info) == infos
    assert client.get(f"/webhooks/{delivered.id}/attempts/{old_id}").status_code == 404
    assert client.get(f"/webhooks/{delivered.id}/attempts/{kept_ids[0]}").status_code == 200


def test_trigger_now_on_a_disabled_webhook_is_refused(app, client, auth, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/off"), active=False)
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/trigger", follow_redirects=True)
    assert response.status_code == 200
    assert "The webhook is disabled: enable it before triggering it." in html.unescape(response.get_data(as_text=True))
    run_worker(app)
    assert handler.requests_to("/off") == []
    after = stored(hook.id)
    assert (after.events_count, after.next_trigger_at, after.triggers_count) == (0, None, 0)


def test_trigger_now_re_enables_an_out_of_order_webhook_and_delivers(app, client, auth, vendor, handler):
    hook = make_webhook(vendor, external_url=handler.behave("/revived"))
    db.session.get(Webhook, hook.id).out_of_order = True
    db.session.commit()
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/trigger", follow_redirects=True)
    assert "Triggered “Fulfillment hook”" in html.unescape(response.get_data(as_text=True))
    assert stored(hook.id).status == "Enabled"
    run_worker(app)
    [request] = handler.wait_for("/revived")
    assert request.json()["webhook_id"] == hook.id
    after = stored(hook.id)
    assert (after.out_of_order, after.events_count, after.success_count) == (False, 1, 1)
    assert [a.number for a in attempts_of(hook.id)] == [1]


def test_the_details_page_title_is_the_label_and_deliveries_appear_once(client, auth, vendor):
    hook = make_webhook(vendor)
    auth.login()
    text = page(client, f"/webhooks/{hook.id}?tab=deliveries")
    assert re.search(r"<title>(.*?)</title>", text, re.S).group(1) == "Fulfillment hook · Deliveries · webhookapp"
    assert text.count('id="deliveries"') == 1


def test_a_handlers_markup_is_shown_escaped(app, client, auth, vendor, handler):
    script = b"<script>alert(1)</script>"
    hook = make_webhook(vendor, external_url=handler.behave("/html", status=500, body=script))
    auth.login()
    trigger(app, client, hook.id)
    [attempt] = attempts_of(hook.id)
    for url in (f"/webhooks/{hook.id}/attempts/{attempt.id}", f"/webhooks/{hook.id}"):  # Statistics: the excerpt
        db.session.expire_all()
        raw = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in raw
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw


def test_a_deeply_nested_json_answer_does_not_break_the_attempt_page(app, client, auth, vendor, handler):
    nested = b"[" * 20000 + b"]" * 20000  # valid JSON, under the 64 KiB cap
    hook = make_webhook(vendor, external_url=handler.behave("/deep", body=nested))
    auth.login()
    trigger(app, client, hook.id)
    [attempt] = attempts_of(hook.id)
    assert attempt.success is True
    text = page(client, f"/webhooks/{hook.id}/attempts/{attempt.id}")
    assert "HTTP <strong>200</strong>" in text and "[[[[" in text


def test_an_attempt_has_one_number_everywhere(client, auth, vendor):
    hook = make_webhook(vendor)
    add_attempts(hook, 3)  # numbered 1 to 3; their ids are the database's own
    third = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id, Attempt.number == 3)).one()
    auth.login()
    full = page(client, f"/webhooks/{hook.id}/attempts/{third.id}")
    text = main_part(full)
    digits = f"{third.id:06d}"
    reference = f"AT-{digits[:3]}-{digits[3:]}"  # the id the URL has, as a person quotes it
    assert f"<title>Attempt {reference} · {hook.label}" in full
    assert f"<span>{reference}</span></nav>" in text and f"<h1>Attempt {reference} " in text
    assert f'<p class="muted">{hook.label} · attempt 3 of 10 · ' in text
    rows = ROW.finditer(main_part(page(client, f"/webhooks/{hook.id}?tab=deliveries")))
    assert [(row["reference"], row["number"]) for row in rows if row["id"] == str(third.id)] == [(reference, "3")]
