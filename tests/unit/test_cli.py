"""Command line (docs/architecture.md, "Running"): seed-demo, accounts, users, products and tokens,
through ``runner``."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Account, ApiToken, Product, User, tenancy
from webhookapp.services import accounts


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def invoke(runner, *args: str):
    return runner.invoke(args=list(args))


def test_seed_demo_creates_the_demo_accounts(runner, client):
    result = invoke(runner, "seed-demo")
    assert result.exit_code == 0, result.output
    assert "Demo vendor VA-000-001: log in as vendor@example.com / webhookapp-demo" in result.output
    assert "Demo distributor PA-000-001: log in as distributor@example.com / webhookapp-demo" in result.output
    vendor, distributor = db.session.get(Account, "VA-000-001"), db.session.get(Account, "PA-000-001")
    assert (vendor.kind, distributor.kind) == ("vendor", "distributor")
    assert [(u.email, u.is_admin) for u in vendor.users] == [("vendor@example.com", True)]
    assert [(u.email, u.is_admin) for u in distributor.users] == [("distributor@example.com", False)]
    products = db.session.scalars(select(Product).order_by(Product.id)).all()
    assert [(p.id, p.vendor_id, p.dynamic_validation) for p in products] == [
        ("PRD-000-000-001", "VA-000-001", False),
        ("PRD-000-000-002", "VA-000-001", True),
        ("PRD-000-000-003", "VA-000-001", False),
    ]
    response = client.post("/login", data={"email": "vendor@example.com", "password": "webhookapp-demo"})
    assert response.headers["Location"] == "/webhooks"


def test_seed_demo_is_idempotent_and_resets_the_password(runner):
    assert invoke(runner, "seed-demo").exit_code == 0
    counts = (count(Account), count(User), count(Product))
    result = invoke(runner, "seed-demo", "--password", "another-password")
    assert result.exit_code == 0, result.output
    assert (count(Account), count(User), count(Product)) == counts == (2, 2, 3)
    assert accounts.authenticate("vendor@example.com", "another-password") is not None
    assert accounts.authenticate("vendor@example.com", "webhookapp-demo") is None


def test_seed_demo_if_empty_seeds_an_empty_database(runner):
    result = invoke(runner, "seed-demo", "--if-empty")
    assert result.exit_code == 0, result.output
    assert count(Account) == 2


def test_seed_demo_if_empty_does_nothing_on_a_non_empty_database(runner, vendor):
    result = invoke(runner, "seed-demo", "--if-empty", "--password", "changed-password")
    assert result.exit_code == 0, result.output
    assert "not seeding" in result.output
    assert (count(Account), count(User), count(Product)) == (1, 1, 2)
    assert db.session.get(Account, "VA-000-001") is None


def test_seed_demo_refuses_a_short_password_on_an_existing_demo(runner):
    assert invoke(runner, "seed-demo").exit_code == 0
    result = invoke(runner, "seed-demo", "--password", "short")
    assert result.exit_code == 1
    assert "Password must be at least 12 characters (this one has 5)." in result.output
    assert accounts.authenticate("vendor@example.com", "short") is None


def test_failed_seed_demo_leaves_the_database_empty(runner):
    result = invoke(runner, "seed-demo", "--password", "short")
    assert result.exit_code == 1
    assert "Error: Password must be at least 12 characters (this one has 5)." in result.output
    assert count(Account) == 0


@pytest.mark.parametrize(("kind", "prefix"), [("vendor", "VA"), ("distributor", "PA")])
def test_accounts_create_prints_the_new_id(runner, kind, prefix):
    result = invoke(runner, "accounts", "create", "--kind", kind, "--name", "  New Co  ")
    assert result.exit_code == 0, result.output
    account_id = result.output.strip()
    assert re.fullmatch(rf"{prefix}-\d{{3}}-\d{{3}}", account_id)
    account = db.session.get(Account, account_id)
    assert (account.name, account.kind) == ("New Co", kind)


def test_accounts_create_refuses_an_unknown_kind(runner):
    result = invoke(runner, "accounts", "create", "--kind", "reseller", "--name", "X")
    assert result.exit_code == 2
    assert "Invalid value for '--kind'" in result.output
    assert count(Account) == 0


def test_users_create(runner, vendor):
    args = ["--account", vendor.account.id, "--email", "New@Acme.test", "--password", "long enough passphrase"]
    result = invoke(runner, "users", "create", *args, "--name", "Newbie", "--admin")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"User new@acme.test created in {vendor.account.id}."
    user = accounts.authenticate("new@acme.test", "long enough passphrase")
    assert (user.name, user.is_admin, user.account_id) == ("Newbie", True, vendor.account.id)


@pytest.mark.parametrize(
    ("account", "email", "password", "message"),
    [
        ("VA-999-999", "x@y.test", "long enough passphrase", "Error: No account VA-999-999."),
        (None, "alice@acme.test", "long enough passphrase", "Error: A user with email alice@acme.test already exists."),
        (None, "not-an-email", "long enough passphrase", "Error: Email address is not valid."),
        (None, "x@y.test", "short", "Error: Password must be at least 12 characters (this one has 5)."),
        (None, "x@y.test", "password1234", "This password is too easy to guess. This is a very common password."),
        (None, "x@y.test", "qwertyuiop123", "Error: This password is too easy to guess."),
    ],
)
def test_users_create_failures(runner, vendor, account, email, password, message):
    args = ["--account", account or vendor.account.id, "--email", email, "--password", password]
    result = invoke(runner, "users", "create", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert count(User) == 1


@pytest.mark.parametrize("dynamic", [False, True])
def test_products_create(runner, vendor, dynamic):
    extra = ["--dynamic-validation"] if dynamic else []
    result = invoke(runner, "products", "create", "--vendor", vendor.account.id, "--name", "Widget", *extra)
    assert result.exit_code == 0, result.output
    product = db.session.get(Product, result.output.strip())
    assert re.fullmatch(r"PRD-\d{3}-\d{3}-\d{3}", product.id)
    assert (product.name, product.vendor_id, product.dynamic_validation) == ("Widget", vendor.account.id, dynamic)


def test_products_create_needs_a_vendor_account(runner, distributor):
    result = invoke(runner, "products", "create", "--vendor", distributor.account.id, "--name", "Widget")
    assert result.exit_code == 1
    assert f"Error: No vendor account {distributor.account.id}." in result.output
    assert count(Product) == 0


@pytest.mark.parametrize("scheme", ["ApiKey", "Bearer"])
def test_tokens_create_prints_a_working_token_last(runner, vendor, scheme):
    result = invoke(runner, "tokens", "create", "--account", vendor.account.id, "--name", "ERP")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[0] == f"Token “ERP” created for {vendor.account.id} (every scope). It is shown once:"
    plain = lines[-1]
    assert re.fullmatch(r"whk_[A-Za-z0-9_-]{43}", plain)
    token = tenancy.authenticate_header(f"{scheme} {plain}")
    assert (token.account_id, token.name, token.is_platform) == (vendor.account.id, "ERP", False)


def test_tokens_create_platform(runner, vendor):
    result = invoke(runner, "tokens", "create", "--account", vendor.account.id, "--platform")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Platform token “Command line” created")
    token = tenancy.authenticate_header("ApiKey " + result.output.splitlines()[-1])
    assert (token.name, token.is_platform) == ("Command line", True)


def test_tokens_create_for_an_unknown_account_fails(runner):
    result = invoke(runner, "tokens", "create", "--account", "VA-999-999")
    assert result.exit_code == 1
    assert "Error: No account VA-999-999." in result.output
    assert count(ApiToken) == 0


def test_tokens_create_with_scopes_and_an_expiry(runner, vendor):
    before = utcnow()
    result = invoke(runner, "tokens", "create", "--account", vendor.account.id, "--scope", "events:write",
                    "--scope", "webhooks:read", "--scope", "events:write", "--expires-in", "30d")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(scopes webhooks:read, events:write, expires 20" in result.output.splitlines()[0]
    token = tenancy.presented_token("ApiKey " + result.output.splitlines()[-1])
    assert token.scope_names == ["webhooks:read", "events:write"]
    assert before + timedelta(days=30) <= token.expires_at <= utcnow() + timedelta(days=30)


@pytest.mark.parametrize(("given", "lifetime"), [("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)),
                                                 ("12h", timedelta(hours=12)), (" 7d", timedelta(days=7))])  # fmt: skip
def test_tokens_create_expires_in_units(runner, vendor, given, lifetime):
    before = utcnow()
    result = invoke(runner, "tokens", "create", "--account", vendor.account.id, "--expires-in", given)
    assert result.exit_code == 0, result.output
    token = tenancy.presented_token("ApiKey " + result.output.splitlines()[-1])
    assert before + lifetime <= token.expires_at <= utcnow() + lifetime


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "webhooks:admin"], "Invalid value for '--scope': 'webhooks:admin' is not one of"),
        (["--scope", ""], "Invalid value for '--scope'"),
        (["--expires-in", "30"], "Invalid value for '--expires-in': '30' is not a lifetime"),
        (["--expires-in", "2w"], "'2w' is not a lifetime: a whole number and a unit (s, m, h or d)"),
        (["--expires-in", "0d"], "'0d' is not a lifetime"),
        (["--expires-in", "-5m"], "'-5m' is not a lifetime"),
        (["--expires-in", "1.5h"], "'1.5h' is not a lifetime"),
        (["--expires-in", "99999999999d"], "'99999999999d' is too long a lifetime"),
    ],
)
def test_tokens_create_refuses_a_bad_scope_or_lifetime(runner, vendor, args, message):
    result = invoke(runner, "tokens", "create", "--account", vendor.account.id, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert count(ApiToken) == 0
