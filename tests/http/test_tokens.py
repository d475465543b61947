"""API tokens: the settings page (scopes, expiry, last use) and ``tenancy.authenticate_header``."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import timedelta

import pytest

from tests.conftest import make_tenant
from webhookapp.core import scopes
from webhookapp.core.scopes import TokenExpired
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken, tenancy
from webhookapp.services import tokens

EVERY = {"scopes": list(scopes.ALL_SCOPES)}  # the create form's checkboxes, as a browser sends them checked
TOKEN = re.compile(r'<code class="secret-value" id="new-token">(whk_[A-Za-z0-9_-]{43})</code>')


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def stored(token_id: int) -> ApiToken:
    db.session.rollback()
    return db.session.get(ApiToken, token_id)


def all_tokens() -> list[ApiToken]:
    db.session.rollback()
    return db.session.query(ApiToken).order_by(ApiToken.id).all()


def test_create_shows_the_token_once(client, auth, vendor):
    auth.login()
    response = client.post("/settings/tokens", data={**EVERY, "name": "ERP connector"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = text(response)
    plain = TOKEN.search(body).group(1)
    assert "Token “ERP connector” created. Copy it now: it will not be shown again." in body
    later = client.get("/settings/tokens")
    assert plain not in text(later)
    assert plain[:10] + "…" in text(later)  # only the prefix is listed


def test_only_a_sha256_digest_is_stored(client, auth, vendor):
    auth.login()
    plain = TOKEN.search(text(client.post("/settings/tokens", data={**EVERY, "name": "ERP"}))).group(1)
    [token] = all_tokens()
    assert token.token_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert token.prefix == plain[:10]
    assert (token.account_id, token.name, token.is_platform) == (vendor.account.id, "ERP", False)
    row = {column.key: getattr(token, column.key) for column in ApiToken.__table__.columns}
    assert plain not in [str(value) for value in row.values()]


def test_list_shows_name_prefix_created_and_last_used(client, auth, vendor):
    token, plain = tokens.create_token(vendor.account, "Billing system")
    auth.login()
    body = text(client.get("/settings/tokens"))
    created = token.created_at.strftime("%Y-%m-%d %H:%M UTC")
    assert '<td data-label="Name" class="wrap">Billing system</td>' in body
    assert f'<td data-label="Token" class="mono">{token.prefix}…</td>' in body
    assert f'<td data-label="Created">{created}</td>' in body
    assert '<td data-label="Last used">Never</td>' in body
    tenancy.authenticate_header(f"ApiKey {plain}", "198.51.100.23")
    used = stored(token.id).last_used_at.strftime("%Y-%m-%d %H:%M UTC")
    assert (f'<td data-label="Last used">{used}<br><span class="muted small">from <span class="mono">198.51.100.23'
            "</span></span></td>") in text(client.get("/settings/tokens"))  # fmt: skip


def test_empty_page_and_other_accounts_tokens(client, auth, vendor, other_vendor):
    tokens.create_token(other_vendor.account, "Their token")
    auth.login()
    body = text(client.get("/settings/tokens"))
    assert "No tokens yet." in body
    assert "Their token" not in body


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the token a name, such as the system that will use it."),
        ("n" * 101, "Field cannot be longer than 100 characters."),
    ],
)
def test_create_refuses_a_bad_name(client, auth, vendor, name, message):
    auth.login()
    response = client.post("/settings/tokens", data={**EVERY, "name": name})
    assert response.status_code == 400
    assert message in text(response)
    assert TOKEN.search(text(response)) is None
    assert all_tokens() == []


def test_revoke(client, auth, vendor):
    token, plain = tokens.create_token(vendor.account, "Old")
    auth.login()
    response = client.post(f"/settings/tokens/{token.id}/revoke")
    assert response.status_code == 302
    assert response.headers["Location"] == "/settings/tokens"
    assert stored(token.id).revoked_at is not None
    assert tenancy.authenticate_header(f"ApiKey {plain}") is None
    body = text(client.get("/settings/tokens"))
    assert "Token “Old” revoked." in body
    assert '<span class="badge badge-off">Revoked</span>' in body
    assert f'href="/settings/tokens/{token.id}/revoke"' not in body


def test_revoking_asks_first_and_a_get_changes_nothing(client, auth, vendor):
    token, _ = tokens.create_token(vendor.account, "Keep")
    auth.login()
    listed = text(client.get("/settings/tokens"))
    assert f'href="/settings/tokens/{token.id}/revoke" aria-label="Revoke Keep"' in listed
    asked = client.get(f"/settings/tokens/{token.id}/revoke")
    body = text(asked)
    assert asked.status_code == 200 and "Revoke token?" in body and "“<strong>Keep</strong>”" in body
    assert f'<form method="post" action="/settings/tokens/{token.id}/revoke"' in body
    assert stored(token.id).revoked_at is None
    tokens.revoke_token(stored(token.id))
    assert "is already revoked" in text(client.get(f"/settings/tokens/{token.id}/revoke"))


def test_revoking_another_accounts_token_is_404(client, auth, vendor, other_vendor):
    theirs, plain = tokens.create_token(other_vendor.account, "Theirs")
    auth.login()
    assert client.post(f"/settings/tokens/{theirs.id}/revoke").status_code == 404
    assert client.post("/settings/tokens/999999/revoke").status_code == 404
    assert client.get(f"/settings/tokens/{theirs.id}/revoke").status_code == 404
    assert stored(theirs.id).revoked_at is None
    assert tenancy.authenticate_header(f"Bearer {plain}").id == theirs.id


# --- services.tokens and tenancy.authenticate_header -------------------------------------------


@pytest.mark.parametrize("scheme", ["ApiKey", "Bearer", "apikey", "BEARER"])
def test_authenticate_header_accepts_apikey_and_bearer(vendor, scheme):
    token, plain = tokens.create_token(vendor.account, "Script")
    assert token.last_used_at is None
    found = tenancy.authenticate_header(f"{scheme} {plain}")
    assert found is not None
    assert (found.id, found.account_id) == (token.id, vendor.account.id)
    assert stored(token.id).last_used_at is not None


def test_authenticate_header_refuses_revoked_unknown_and_malformed(vendor):
    token, plain = tokens.create_token(vendor.account, "Script")
    other, other_plain = tokens.create_token(vendor.account, "Revoked")
    tokens.revoke_token(other)
    for header in [
        None,
        "",
        plain,
        f"Basic {plain}",
        f"Token {plain}",
        "Bearer",
        "Bearer ",
        f"Bearer {plain}x",
        f"Bearer {plain[:-1]}",
        "ApiKey whk_unknown",
        f"Bearer {other_plain}",
        f"Bearer {token.token_hash}",
    ]:
        assert tenancy.authenticate_header(header) is None, header
    assert stored(token.id).last_used_at is None


def test_create_token_validates_the_name(vendor):
    with pytest.raises(tokens.TokenError, match=r"^Token name is required\.$"):
        tokens.create_token(vendor.account, "   ")
    with pytest.raises(tokens.TokenError, match=r"^Token name must be at most 100 characters\.$"):
        tokens.create_token(vendor.account, "n" * 101)


def test_list_tokens_puts_active_first_and_is_per_account(vendor):
    first, _ = tokens.create_token(vendor.account, "First")
    second, _ = tokens.create_token(vendor.account, "Second")
    tokens.revoke_token(first)
    other = make_tenant("vendor", "Else", "else@else.test")
    tokens.create_token(other.account, "Elsewhere")
    assert [t.name for t in tokens.list_tokens(vendor.account)] == ["Second", "First"]
    assert tokens.get_token(other.account, second.id) is None


# --- scopes and expiry on the page ------------------------------------------------------------


def test_the_create_form_offers_every_scope_checked_and_an_empty_expiry(client, auth, vendor):
    auth.login()
    body = text(client.get("/settings/tokens"))
    for name in scopes.ALL_SCOPES:
        assert f'<input type="checkbox" name="scopes" value="{name}" checked>' in body
        assert scopes.SCOPES[name] in body
    assert re.search(r'<input[^>]* id="expires_at"[^>]* type="datetime-local" value="">', body)


def test_create_with_chosen_scopes_and_an_expiry(client, auth, vendor):
    auth.login()
    later = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    response = client.post("/settings/tokens", data={"name": "Poster", "scopes": ["events:write", "webhooks:read"],
                                                     "expires_at": later.strftime("%Y-%m-%dT%H:%M")})  # fmt: skip
    assert response.status_code == 200, text(response)
    [token] = all_tokens()
    assert (token.scope_names, token.expires_at) == (["webhooks:read", "events:write"], later)
    row = text(response).split('<td data-label="Name" class="wrap">Poster</td>')[1].split("</tr>")[0]
    assert '<li class="mono small" title="Post queue-change events.">events:write</li>' in row
    assert f'<td data-label="Expires">{later:%Y-%m-%d %H:%M} UTC</td>' in row
    assert '<span class="badge badge-ok">Active</span>' in row


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "scopes", "Choose at least one scope: what the token may do."),
        ({"scopes": ["webhooks:admin"]}, "scopes", "'webhooks:admin' is not a valid choice"),
        ({**EVERY, "expires_at": "2020-01-01T00:00"}, "expires_at", "Choose a time in the future"),
        ({**EVERY, "expires_at": "tomorrow"}, "expires_at", "Not a valid datetime value."),
    ],
)
def test_create_refuses_bad_scopes_or_expiry_next_to_the_field(client, auth, vendor, data, field, message):
    auth.login()
    response = client.post("/settings/tokens", data={"name": "Refused", **data})
    assert response.status_code == 400
    errors = re.search(rf'<ul class="field-errors" id="{field}-errors">(.*?)</ul>', text(response), re.S)
    assert errors and message in errors.group(1)
    assert all_tokens() == []


def test_an_expired_token_is_shown_as_expired(client, auth, vendor):
    token, plain = tokens.create_token(vendor.account, "Short-lived", expires_at=utcnow() + timedelta(seconds=30))
    db.session.execute(db.update(ApiToken).where(ApiToken.id == token.id).values(expires_at=utcnow()))
    db.session.commit()
    auth.login()
    body = text(client.get("/settings/tokens"))
    row = body.split('<td data-label="Name" class="wrap">Short-lived</td>')[1].split("</tr>")[0]
    assert '<span class="badge badge-off">Expired</span>' in row
    assert f'<td data-label="Expires">{stored(token.id).expires_at:%Y-%m-%d %H:%M} UTC</td>' in row
    assert tenancy.authenticate_header(f"ApiKey {plain}") is None
    with pytest.raises(TokenExpired, match="This token expired on "):
        tenancy.authorize(f"ApiKey {plain}", scopes.EVENTS_WRITE, None)


def test_the_service_refuses_no_scope_an_unknown_one_and_a_past_expiry(vendor):
    for kwargs, message in (
        ({"scope_names": []}, "Choose at least one scope."),
        ({"scope_names": ["events:write", "root"]}, "Unknown scope 'root'"),
        ({"expires_at": utcnow()}, "The expiry must be in the future."),
    ):
        with pytest.raises(tokens.TokenError, match=re.escape(message)):
            tokens.create_token(vendor.account, "Refused", **kwargs)
    assert all_tokens() == []
