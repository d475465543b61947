"""Details page, secret reveal, enable/disable and delete."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import make_webhook
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

SECRET = "very-secret-signing-key-0123456789abcdef"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def stored(webhook_id: str) -> Webhook | None:
    db.session.rollback()
    return db.session.get(Webhook, webhook_id)


@pytest.fixture
def hook_fields() -> dict[str, Any]:
    return {
        "label": "Billing <hook>",
        "description": "Calls the ERP",
        "jwt_secret": SECRET,
        "headers": {"X-Api-Key": "abc"},
        "data": {"purpose": "demo"},
    }


def test_details_show_every_setting(client, auth, vendor, hook):
    auth.login()
    responses = [client.get(f"/webhooks/{hook.id}{query}") for query in ("", "?tab=http", "?tab=data")]
    assert [response.status_code for response in responses] == [200, 200, 200]
    body = "".join(text(response) for response in responses)
    raw = responses[0].get_data(as_text=True)
    assert "Billing &lt;hook&gt;" in raw  # escaped, never markup
    for shown in (
        hook.id,
        "Acme Cloud",
        vendor.products[0].id,
        "Subscription — Fulfillment Requests — Queue Changes",
        "Calls the ERP",
        "https://handler.example.com/hook",
        '<td class="mono break">X-Api-Key</td><td class="mono break">abc</td>',
        '"purpose": "demo"',
        "<dt>Status</dt><dd>Enabled</dd>",
        '<span class="badge badge-method">POST</span>',
    ):
        assert shown in body, shown


def test_details_of_a_get_webhook_have_no_custom_data(client, auth, vendor):
    hook = make_webhook(vendor, http_method="GET")
    auth.login()
    body = text(client.get(f"/webhooks/{hook.id}?tab=http"))
    assert '<span class="badge badge-method">GET</span>' in body
    assert "Custom Data" not in body and "tab=data" not in body
    assert 'id="custom-data"' not in text(client.get(f"/webhooks/{hook.id}?tab=data"))  # the first tab instead
    assert "No custom headers" in body


def test_details_mask_the_secret(client, auth, hook):
    auth.login()
    body = text(client.get(f"/webhooks/{hook.id}?tab=http"))
    assert SECRET not in body
    assert "•" * 24 in body
    reveal = body.split('class="secret-form"', 1)[1].split("</form>", 1)[0]
    assert '<input type="hidden" name="tab" value="http">' in reveal
    assert '<input type="hidden" name="reveal" value="secret">' in reveal
    assert "Reveal<" in reveal and "JWT secret</span></button>" in reveal


def test_details_reveal_the_secret_on_request(client, auth, hook):
    auth.login()
    body = text(client.get(f"/webhooks/{hook.id}?tab=http&reveal=secret"))
    assert f'<code class="secret-value" id="jwt-secret">{SECRET}</code>' in body
    assert "•" * 24 not in body


def test_secret_endpoint_returns_json_never_cached(client, auth, hook):
    auth.login()
    response = client.get(f"/webhooks/{hook.id}/secret")
    assert response.status_code == 200
    assert response.is_json
    assert response.get_json() == {"jwt_secret": SECRET}
    assert response.headers["Cache-Control"] == "no-store"


def test_revealed_secret_page_is_not_cached(client, auth, hook):
    auth.login()
    response = client.get(f"/webhooks/{hook.id}?tab=http&reveal=secret")
    assert SECRET in text(response)
    assert response.headers.get("Cache-Control") == "no-store"


@pytest.mark.parametrize("url", ["/webhooks/WH-000-000-000", "/webhooks/nonsense/edit", "/webhooks/WH-1/secret"])
def test_unknown_webhook_is_a_404_page(client, auth, vendor, url):
    auth.login()
    response = client.get(url)
    assert response.status_code == 404
    body = text(response)
    assert "<h1>Not found</h1>" in body
    assert "There is nothing here, or it belongs to another account." in body


def test_disable_then_enable(client, auth, hook):
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/disable")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/webhooks/{hook.id}"
    assert (stored(hook.id).active, stored(hook.id).status) == (False, "Disabled")
    page = text(client.get(f"/webhooks/{hook.id}"))
    assert "Webhook “Billing <hook>” disabled." in page
    assert f'action="/webhooks/{hook.id}/enable"' in page
    client.post(f"/webhooks/{hook.id}/enable")
    assert (stored(hook.id).active, stored(hook.id).status) == (True, "Enabled")
    assert "Webhook “Billing <hook>” enabled." in text(client.get(f"/webhooks/{hook.id}"))


def test_enable_brings_an_out_of_order_webhook_back(client, auth, hook):
    hook.out_of_order = True
    db.session.commit()
    auth.login()
    page = text(client.get(f"/webhooks/{hook.id}"))
    assert "<dt>Status</dt><dd>Out of order</dd>" in page
    assert f'action="/webhooks/{hook.id}/enable"' in page  # the button offered is Enable
    client.post(f"/webhooks/{hook.id}/enable")
    row = stored(hook.id)
    assert (row.active, row.out_of_order, row.status) == (True, False, "Enabled")


def test_toggle_sets_modified_at(client, auth, hook):
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    hook.modified_at = long_ago
    db.session.commit()
    auth.login()
    client.post(f"/webhooks/{hook.id}/disable")
    assert stored(hook.id).modified_at > long_ago


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_toggle_is_post_only(client, auth, hook, action):
    auth.login()
    assert client.get(f"/webhooks/{hook.id}/{action}").status_code == 405
    assert stored(hook.id).active is True


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_toggle_ignores_an_external_next(client, auth, hook, target):
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/disable", data={"next": target})
    assert response.headers["Location"] == f"/webhooks/{hook.id}"


def test_delete_asks_for_confirmation_first(client, auth, hook):
    auth.login()
    response = client.get(f"/webhooks/{hook.id}/delete")
    assert response.status_code == 200
    body = text(response)
    assert "<h1>Delete webhook?</h1>" in body
    assert f"“<strong>Billing <hook></strong>” ({hook.id})" in body
    assert f'<form method="post" action="/webhooks/{hook.id}/delete"' in body
    assert stored(hook.id) is not None


def test_delete_removes_the_webhook(client, auth, hook):
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/delete")
    assert response.status_code == 302
    assert response.headers["Location"] == "/webhooks"
    assert stored(hook.id) is None
    assert "Webhook “Billing <hook>” deleted." in text(client.get("/webhooks"))
    assert client.get(f"/webhooks/{hook.id}").status_code == 404
    assert client.post(f"/webhooks/{hook.id}/delete").status_code == 404


TAB_HEADINGS = {
    "statistics": '<h2 id="statistics-title">Statistics</h2>',
    "http": '<h2 id="http-title">HTTP Settings</h2>',
    "data": '<h2 id="data-title">Custom Data</h2>',
    "deliveries": '<h2 id="deliveries-title">Deliveries</h2>',
}


@pytest.mark.parametrize("tab", list(TAB_HEADINGS))
def test_the_details_page_shows_one_tab_at_a_time_at_its_own_address(client, auth, hook, tab):
    auth.login()
    body = text(client.get(f"/webhooks/{hook.id}?tab={tab}"))
    assert [key for key, heading in TAB_HEADINGS.items() if heading in body] == [tab]
    nav = body.split('<nav class="tabs"', 1)[1].split("</nav>", 1)[0]
    current = re.findall(r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', nav)
    assert len(current) == 1 and current[0][0].endswith(f"?tab={tab}" if tab != "statistics" else hook.id)
    assert f"<title>Billing <hook> · {current[0][1]} · webhookapp</title>" in body


@pytest.mark.parametrize("asked", ["", "?tab=", "?tab=nonsense", "?tab=%3Cscript%3E"])
def test_a_missing_or_unknown_tab_shows_statistics(client, auth, hook, asked):
    auth.login()
    response = client.get(f"/webhooks/{hook.id}{asked}")
    assert response.status_code == 200
    assert TAB_HEADINGS["statistics"] in text(response) and "<script>" not in response.get_data(as_text=True)


def test_the_menu_holds_enable_or_disable_and_delete(client, auth, hook):
    auth.login()
    body = text(client.get(f"/webhooks/{hook.id}"))
    menu = body.split('<details class="menu">', 1)[1].split("</details>", 1)[0]
    assert 'aria-label="More actions"' in menu
    assert f'action="/webhooks/{hook.id}/disable"' in menu and f'href="/webhooks/{hook.id}/delete"' in menu
    outside = body.replace(menu, "")
    assert f"/webhooks/{hook.id}/disable" not in outside and f"/webhooks/{hook.id}/delete" not in outside
