"""Reading the audit trail: the Activity page, the webhook's Activity tab and ``/public/v1/audit``
filter and page, show an account its own entries only, and never change or delete one."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import make_webhook
from tests.engine import api_token
from webhookapp.activity.routes import PER_PAGE
from webhookapp.core.times import utcnow
from webhookapp.engine import maintenance
from webhookapp.infra.extensions import db
from webhookapp.models import Actor, AuditEntry, audit

API = "/public/v1/audit"


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def rows(response) -> list[str]:
    """The entry ids of a page's table, top to bottom."""
    return re.findall(r'<tr id="entry-(\d+)">', response.get_data(as_text=True))


def add(account_id: str, action: str = "webhook.updated", *, days_ago: float = 0, **details) -> AuditEntry:
    entry = audit.record(Actor.system(), action, account_id=account_id, **details)
    entry.at = utcnow() - timedelta(days=days_ago)
    db.session.commit()
    return entry


@pytest.fixture
def trail(client, auth, vendor, other_vendor):
    """Alice's account: two webhooks changed by her, a token's action; the other account's entries."""
    auth.login()
    first = make_webhook(vendor, label="First")
    second = make_webhook(vendor, label="Second")
    client.post(f"/webhooks/{first.id}/disable", headers={"User-Agent": "Browser/1 <b>"})
    client.post(f"/webhooks/{second.id}/enable")
    make_webhook(other_vendor, label="Theirs")
    db.session.rollback()
    return first, second


def test_the_activity_page_shows_who_what_where_and_the_changes(client, trail, vendor):
    first, _second = trail
    page = client.get("/activity")
    body = text(page)
    assert 'aria-current="page">Activity</a>' in body
    disabled = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "webhook.disabled"))
    assert rows(page)[0] != str(disabled.id) and str(disabled.id) in rows(page)  # newest first
    assert "alice@acme.test" in body and "127.0.0.1" in body and "Browser/1 <b>" in body
    assert "<b>" not in page.get_data(as_text=True).replace("<b>webhook", "")  # escaped
    assert f'href="/webhooks/{first.id}"' in body
    assert "true</code> → <code>false" in body
    assert "Theirs" not in body  # another account's entries


def test_the_activity_page_filters(client, trail, vendor):
    first, _second = trail
    assert len(rows(client.get(f"/activity?object={first.id}"))) == 2  # created, disabled
    assert len(rows(client.get("/activity?action=webhook.enabled"))) == 1
    assert len(rows(client.get("/activity?actor=alice@acme.test"))) == 3  # her login and two page actions
    assert len(rows(client.get("/activity?actor=cli"))) == 2  # the webhooks made by the test's service calls
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    today = utcnow().date().isoformat()
    assert rows(client.get(f"/activity?since={tomorrow}")) == []
    assert len(rows(client.get(f"/activity?since={today}&until={today}"))) == 5
    assert "No recorded action matches" in text(client.get("/activity?action=token.revoked"))
    assert len(rows(client.get("/activity?action=not.an.action&since=garbage"))) == 5  # ignored, not an error
    body = text(client.get("/activity"))
    assert '<option value="alice@acme.test"' in body and '<option value="webhook.secret_revealed"' in body
    assert '<option value="cli"' in body and '<option value="system"' in body


def test_the_activity_page_pages_by_key_without_javascript(client, auth, vendor):
    auth.login()
    for number in range(PER_PAGE + 5):
        add(vendor.account.id, object_id=f"WH-{number}", days_ago=number / 1000)
    first_page = client.get("/activity")
    assert len(rows(first_page)) == PER_PAGE
    older = re.search(r'href="([^"]+)" rel="next"|rel="next" href="([^"]+)"', text(first_page))
    link = older.group(1) or older.group(2)
    second_page = client.get(link)
    assert len(rows(second_page)) == 6  # 5 made here and alice's login
    assert not set(rows(first_page)) & set(rows(second_page))
    assert "« Newest" in text(second_page) and "Older →" not in text(second_page)
    filtered = client.get("/activity?action=webhook.updated")
    assert "action=webhook.updated" in re.search(r'rel="next" href="([^"]+)"', text(filtered)).group(1)
    assert len(rows(client.get("/activity?at=oldest"))) == PER_PAGE


def test_the_webhook_activity_tab(client, trail):
    first, _second = trail
    tab = client.get(f"/webhooks/{first.id}?tab=activity")
    body = text(tab)
    assert ">Activity</" in body and len(rows(tab)) == 2
    assert "webhook.disabled" in body and "webhook.enabled" not in body
    assert f"/activity?object={first.id}" in body


def test_the_api_lists_filters_and_pages(client, trail, vendor):
    first, _second = trail
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    listed = client.get(API, headers=headers)
    assert listed.status_code == 200
    body = listed.get_json()
    assert [entry["id"] for entry in body] == sorted((entry["id"] for entry in body), reverse=True)  # newest first
    assert listed.headers["Content-Range"] == f"items 0-{len(body) - 1}/{len(body)}"
    disabled = next(entry for entry in body if entry["action"] == "webhook.disabled")
    alice = {"kind": "user", "label": "alice@acme.test", "user_id": vendor.user.id, "token_id": None}
    assert disabled["actor"] == alice
    assert disabled["object"] == {"type": "webhook", "id": first.id, "label": "First"}
    assert disabled["client"] == {"address": "127.0.0.1", "user_agent": "Browser/1 <b>"}
    assert disabled["changes"] == {"active": {"before": True, "after": False}}
    assert all(entry["object"]["label"] != "Theirs" for entry in body)

    def ids(query: str) -> list[str]:
        answer = client.get(f"{API}?{query}", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        return [entry["action"] for entry in answer.get_json()]

    assert ids(f"eq(object.id,{first.id})") == ["webhook.disabled", "webhook.created"]
    assert ids("eq(action,webhook.enabled)") == ["webhook.enabled"]
    assert ids("eq(actor.kind,token)") == []
    assert ids(f"eq(actor.user_id,{vendor.user.id})&eq(action,webhook.disabled)") == ["webhook.disabled"]
    assert ids(f"ge(at,{(utcnow() + timedelta(hours=1)).isoformat()})") == []
    assert len(ids(f"ge(at,{(utcnow() - timedelta(hours=1)).isoformat()})")) == len(body)
    assert ids("in(action,(webhook.enabled,webhook.disabled))&ordering(id)") == ["webhook.disabled", "webhook.enabled"]
    page = client.get(f"{API}?limit=2&offset=1", headers=headers)
    assert [entry["id"] for entry in page.get_json()] == [entry["id"] for entry in body[1:3]]
    assert page.headers["Content-Range"] == f"items 1-2/{len(body)}"
    refused = client.get(f"{API}?eq(secret,x)", headers=headers)
    assert refused.status_code == 400 and refused.get_json()["error_code"] == "RQL_001"
    assert client.get(API).status_code == 401

    one = client.get(f"{API}/{disabled['id']}", headers=headers)
    assert one.status_code == 200 and one.get_json() == disabled


def test_another_accounts_entry_is_a_404(client, vendor, other_vendor):
    theirs = add(other_vendor.account.id, object_id="WH-1")
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    for entry_id in (theirs.id, 999_999, 2**40):
        answer = client.get(f"{API}/{entry_id}", headers=headers)
        assert answer.status_code == 404 and answer.get_json()["error_code"] in ("AUD_404", "HTTP_404")
    assert all(entry["id"] != theirs.id for entry in client.get(API, headers=headers).get_json())


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_no_route_changes_or_deletes_an_entry(client, vendor, method):
    entry = add(vendor.account.id)
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    for path in (API, f"{API}/{entry.id}"):
        answer = client.open(path, method=method.upper(), json={"action": "user.logged_in"}, headers=headers)
        assert answer.status_code == 405 and answer.get_json()["error_code"] == "HTTP_405"
        assert "GET" in answer.headers["Allow"]
    db.session.rollback()
    assert db.session.get(AuditEntry, entry.id).action == "webhook.updated"


def test_entries_past_their_retention_are_pruned_in_batches(app, vendor, monkeypatch):
    app.config["WEBHOOK_AUDIT_RETENTION_DAYS"] = 30
    monkeypatch.setattr(maintenance, "BATCH", 3)
    for days in (40, 35, 31, 31, 32, 33, 400):
        add(vendor.account.id, days_ago=days)
    kept = add(vendor.account.id, days_ago=29)
    assert maintenance.prune()["audit_entries"] == 7
    db.session.rollback()
    assert db.session.scalars(select(AuditEntry.id)).all() == [kept.id]
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 1
