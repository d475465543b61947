"""Tenant isolation (docs/architecture.md, "Tenancy"): another account's webhook is a 404
everywhere and stays unchanged."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, make_tenant, make_webhook
from tests.pages import Wizard, field_errors
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import accounts

SECRET = "tenant-a-secret-0123456789abcdefghijkl"


def snapshot(webhook_id: str) -> dict | None:
    db.session.rollback()
    row = db.session.get(Webhook, webhook_id)
    return None if row is None else {column.key: getattr(row, column.key) for column in Webhook.__table__.columns}


@pytest.fixture
def victim(vendor) -> Webhook:
    """A webhook of the vendor, which the tests look at as someone else."""
    return make_webhook(vendor, label="Victim hook", jwt_secret=SECRET, active=True)


EDIT_FORM = {
    "label": "Hijacked",
    "external_url": "https://attacker.example/steal",
    "http_method": "POST",
    "jwt_secret": "attacker",
    "active": "y",
    "action": "save",
}


@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [
        ("GET", "", None),
        ("GET", "?reveal=secret", None),
        ("GET", "/secret", None),
        ("GET", "/edit", None),
        ("POST", "/edit", EDIT_FORM),
        ("POST", "/edit", {**EDIT_FORM, "action": "generate_secret"}),
        ("POST", "/enable", None),
        ("POST", "/disable", None),
        ("GET", "/delete", None),
        ("POST", "/delete", None),
    ],
)
@pytest.mark.parametrize("kind", ["vendor", "distributor"])
def test_another_account_gets_404_and_changes_nothing(client, auth, victim, kind, method, suffix, data):
    email = f"intruder@{kind}.test"
    make_tenant(kind, f"Intruding {kind}", email)
    before = snapshot(victim.id)
    auth.login(email, PASSWORD)
    response = client.open(f"/webhooks/{victim.id}{suffix}", method=method, data=data)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert SECRET not in body
    assert "Victim hook" not in body
    assert snapshot(victim.id) == before


def test_the_owner_still_reaches_the_webhook(client, auth, victim):
    """Control for the test above: the same URLs work for the owning account."""
    auth.login()
    for suffix in ["", "?reveal=secret", "/secret", "/edit", "/delete"]:
        assert client.get(f"/webhooks/{victim.id}{suffix}").status_code == 200, suffix


def test_another_account_cannot_list_or_search_it(client, auth, victim, other_vendor):
    auth.login(other_vendor.email, PASSWORD)
    for url in ["/webhooks", f"/webhooks?q={victim.id}", "/webhooks?q=Victim"]:
        body = client.get(url).get_data(as_text=True)
        assert f'href="/webhooks/{victim.id}"' not in body, url
        assert "Victim hook" not in body, url
        assert "No webhooks" in body, url


def test_a_colleague_in_the_same_account_sees_it(client, auth, vendor, victim):
    """Webhooks belong to the account, not to the user who made them."""
    accounts.create_user(vendor.account.id, "bob@acme.test", PASSWORD)
    auth.login("bob@acme.test", PASSWORD)
    assert client.get(f"/webhooks/{victim.id}").status_code == 200
    assert client.post(f"/webhooks/{victim.id}/disable").status_code == 302
    assert snapshot(victim.id)["active"] is False


def test_webhook_of_another_vendors_product_cannot_be_created_over_http(client, auth, vendor, other_vendor):
    """Even a hand-made post cannot attach a webhook to another vendor's product."""
    auth.login()
    wizard = Wizard(client, other_vendor.products[0].id)
    wizard.complete("general")
    response = wizard.post("product")
    assert response.status_code == 400
    assert field_errors(response, "product_id") == ["Choose one of the products available to your account."]
    assert db.session.query(Webhook).count() == 0
