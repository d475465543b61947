"""Accounts, users and products: creation for the command line, and login."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from webhookapp.core import passwords, rules
from webhookapp.core.errors import ServiceError
from webhookapp.core.ids import ACCOUNT_GROUPS, PRODUCT_GROUPS, new_id
from webhookapp.infra.extensions import Model, db
from webhookapp.models import DISTRIBUTOR, VENDOR, Account, Product, User

ACCOUNT_PREFIXES = {VENDOR: "VA", DISTRIBUTOR: "PA"}
DEMO_PASSWORD = "webhookapp-demo"


class AccountError(ServiceError):
    """A request the command line or a page cannot carry out; the message says why."""

    def __init__(self, message: str):
        super().__init__(400, "ACC_001", message)


def _unused_id(model: type[Model], prefix: str, groups: int) -> str:
    while True:
        candidate = new_id(prefix, groups)
        if db.session.get(model, candidate) is None:
            return candidate


def create_account(kind: str, name: str, account_id: str | None = None) -> Account:
    """Create a vendor or distributor account; the id is generated unless given."""
    if kind not in ACCOUNT_PREFIXES:
        raise AccountError("Account kind must be vendor or distributor.")
    if not name.strip():
        raise AccountError("Account name is required.")
    if account_id and db.session.get(Account, account_id):
        raise AccountError(f"Account {account_id} already exists.")
    account = Account(
        id=account_id or _unused_id(Account, ACCOUNT_PREFIXES[kind], ACCOUNT_GROUPS),
        name=name.strip(),
        kind=kind,
    )
    db.session.add(account)
    db.session.commit()
    return account


def create_user(account_id: str, email: str, password: str, *, name: str = "", is_admin: bool = False) -> User:
    """Create a user of an existing account; emails are unique, case-insensitively."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise AccountError(f"No account {account_id}.")
    email = email.strip().lower()
    if "@" not in email:
        raise AccountError("Email address is not valid.")
    if find_user(email):
        raise AccountError(f"A user with email {email} already exists.")
    check_new_password(password, email, name)
    user = User(account=account, email=email, name=name.strip(), is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def create_product(
    vendor_id: str, name: str, *, dynamic_validation: bool = False, product_id: str | None = None
) -> Product:
    """Create a product owned by a vendor account."""
    vendor = db.session.get(Account, vendor_id)
    if vendor is None or not vendor.is_vendor:
        raise AccountError(f"No vendor account {vendor_id}.")
    if not name.strip():
        raise AccountError("Product name is required.")
    if product_id and db.session.get(Product, product_id):
        raise AccountError(f"Product {product_id} already exists.")
    product = Product(
        id=product_id or _unused_id(Product, "PRD", PRODUCT_GROUPS),
        name=name.strip(),
        vendor=vendor,
        dynamic_validation=dynamic_validation,
    )
    db.session.add(product)
    db.session.commit()
    return product


def find_user(email: str) -> User | None:
    """The user with this email address (any case); None for an address no user can have."""
    if not rules.is_plain(email):
        return None
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def check_new_password(password: str, *user_inputs: str) -> None:
    """Raise :class:`AccountError` when ``password`` breaks the policy (:mod:`..core.passwords`)."""
    found = passwords.problems(password, user_inputs)
    if found:
        raise AccountError(" ".join(found))


def change_password(user: User, new_password: str) -> None:
    """A new password (checked by the caller's form against the policy): every session and
    remember cookie of the user ends, the caller signs the current one in again."""
    from webhookapp.services import audit  # imported here: audit reads users through this module

    check_new_password(new_password, user.email, user.name)
    user.set_password(new_password)
    audit.record("user.password_changed", **audit.about_user(user))  # never the password itself
    db.session.commit()


def end_sessions(user: User) -> None:
    """Logout: every session and remember cookie of ``user``, on every device, ends now."""
    user.end_sessions()
    db.session.commit()


def authenticate(email: str, password: str) -> User | None:
    """The user with these credentials, or None; same work whether or not the email exists."""
    user = find_user(email)
    if user is None:
        User(password_hash="").set_password(password)  # spend the hashing time anyway
        return None
    return user if user.check_password(password) else None


def is_empty() -> bool:
    """True when no account exists yet (a fresh database)."""
    return db.session.scalar(select(func.count()).select_from(Account)) == 0


@dataclass
class DemoLogin:
    kind: str
    account_id: str
    email: str


DEMO_ACCOUNTS = (
    (VENDOR, "VA-000-001", "Demo Vendor", "vendor@example.com"),
    (DISTRIBUTOR, "PA-000-001", "Demo Distributor", "distributor@example.com"),
)
DEMO_PRODUCTS = (
    ("PRD-000-000-001", "Cloud Backup", False),
    ("PRD-000-000-002", "Office Suite", True),
    ("PRD-000-000-003", "Managed Firewall", False),
)


def seed_demo(password: str = DEMO_PASSWORD) -> list[DemoLogin]:
    """Create the demo vendor and distributor, a user each and three products; idempotent.

    Existing demo users get ``password`` again, so the printed login always works.
    """
    check_new_password(password)  # checked first, so a refusal leaves nothing half-made
    logins = []
    for kind, account_id, name, email in DEMO_ACCOUNTS:
        if db.session.get(Account, account_id) is None:
            create_account(kind, name, account_id)
        user = find_user(email)
        if user is None:
            create_user(account_id, email, password, name=f"{name} User", is_admin=kind == VENDOR)
        else:
            user.set_password(password)
            db.session.commit()
        logins.append(DemoLogin(kind, account_id, email))
    for product_id, name, dynamic in DEMO_PRODUCTS:
        if db.session.get(Product, product_id) is None:
            create_product(DEMO_ACCOUNTS[0][1], name, dynamic_validation=dynamic, product_id=product_id)
    return logins
