"""Real-browser fixtures: a live server on a free port and headless Chromium driven by Playwright.

``live_server`` builds its own app (it never uses the root ``app`` fixture, which holds an app
context open), seeds a vendor and serves it from a background thread.  ``page`` opens a fresh
browser context per test; ``logged_in`` is that page after logging in through the form.

Screenshots for the README are written to ``docs/`` only with ``--screenshots`` (``make screenshots``)
or ``WEBHOOKAPP_SCREENSHOTS=1``; otherwise they go to ``tmp_path``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page
from werkzeug.serving import make_server

from tests import schema
from tests.conftest import PASSWORD, Tenant, database_url, make_tenant
from webhookapp import create_app
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Account, Product, User

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 5_000
DOCS = Path(__file__).resolve().parents[2] / "docs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--screenshots", action="store_true", default=False, help="Write the README screenshots to docs/.")


@dataclass
class Vendor:
    """The seeded vendor, as plain values (the ORM objects belong to a closed session)."""

    account_id: str
    email: str
    plain_product_id: str  # "Acme Cloud", without Dynamic Validation
    dynamic_product_id: str  # "Acme Dynamic", with it


@dataclass
class LiveServer:
    url: str
    app: Flask
    vendor: Vendor
    errors: list[BaseException]

    def __str__(self) -> str:
        return self.url

    @contextmanager
    def db(self) -> Iterator[None]:
        """An app context in the test thread, for looking at (or arranging) the database."""
        with self.app.app_context():
            try:
                yield
            finally:
                db.session.remove()

    @staticmethod
    def detach(row):
        """``row`` with its columns loaded, usable after ``db()`` ends; inside ``db()``."""
        db.session.refresh(row)
        db.session.expunge(row)
        return row

    def tenant(self) -> Tenant:
        """The seeded vendor as ``tests.conftest.Tenant`` (for ``make_webhook``); inside ``db()``."""
        account = db.session.get(Account, self.vendor.account_id)
        user = db.session.scalars(db.select(User).filter_by(email=self.vendor.email)).one()
        products = [
            db.session.get(Product, pid) for pid in (self.vendor.plain_product_id, self.vendor.dynamic_product_id)
        ]
        return Tenant(account, user, products)


class _RecordErrors:
    """WSGI middleware: remember exceptions raised by the app (werkzeug would only log them), and
    send each response whole. Werkzeug's server skips the response's ``close()`` when the browser
    drops the connection first (a favicon abandoned mid-load), which would leave a static file
    open for the garbage collector; here it is read and closed at once."""

    def __init__(self, app: Flask, errors: list[BaseException]):
        self.app, self.errors = app, errors

    def __call__(self, environ, start_response):
        try:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                if hasattr(body, "close"):
                    body.close()
        except BaseException as exc:
            self.errors.append(exc)
            raise


@pytest.fixture
def live_server(tmp_path: Path, redis_url: str) -> Iterator[LiveServer]:
    """The app on ``http://127.0.0.1:<free port>``, with a vendor (alice@acme.test) and two products."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url(tmp_path), "REDIS_URL": redis_url})
    with app.app_context():
        schema.prepare(db)
        tenant = make_tenant(
            "vendor", "Acme Vendor", "alice@acme.test", [("Acme Cloud", False), ("Acme Dynamic", True)]
        )
        vendor = Vendor(tenant.account.id, tenant.email, tenant.products[0].id, tenant.products[1].id)
        db.session.remove()

    errors: list[BaseException] = []
    server = make_server("127.0.0.1", 0, _RecordErrors(app, errors), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, vendor, errors)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            schema.empty(db)
            dispose_engines()
    if errors:
        pytest.fail(f"The live server raised: {errors[0]!r}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        message = f"Chromium is not installed at {CHROMIUM}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the browser tests.")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A page in a fresh context (no cookies) whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def log_in(page: Page, email: str = "alice@acme.test", password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/webhooks")


@pytest.fixture
def logged_in(page: Page) -> Page:
    log_in(page)
    return page


@pytest.fixture
def no_js_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A logged-in page with JavaScript off: every page must work without the scripts."""
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log_in(page)
    yield page
    context.close()


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """docs/ with --screenshots (or WEBHOOKAPP_SCREENSHOTS=1), else a temporary folder (the test still runs).

    The option exists only when this conftest is loaded at start-up, i.e. when tests/browser (or a
    file in it) is named on the command line; ``pytest --screenshots`` alone is refused by pytest.
    """
    wanted = request.config.getoption("screenshots", default=False)
    if wanted or os.environ.get("WEBHOOKAPP_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        return DOCS
    return tmp_path
