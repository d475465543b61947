"""Sessions end (docs/security.md, "Sessions"): after SESSION_IDLE_TIMEOUT without a person's
request, after SESSION_MAX_AGE in any case; the live pages' polls are not activity; the remember
cookie has its own lifetime and its two-factor state."""

from __future__ import annotations

import html
import time
from datetime import timedelta

import pytest

from tests.conftest import PASSWORD
from tests.two_factor import code, enrol, forget_last_step
from webhookapp.infra.extensions import db
from webhookapp.models import User
from webhookapp.services import two_factor

REMEMBER = "remember_token"


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def ended_reason(client, response) -> str:
    """Follow a redirect to the login page and read the flashed message."""
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    return page_text(client.get(response.headers["Location"]))


def drop_session(client) -> None:
    client.delete_cookie("session", domain="localhost")


class Clock:
    """The session rules' clock, stopped, and moved on by the test instead of slept through: a test
    that sleeps fails on a busy machine, where a request can take longer than the nap."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    from webhookapp.auth import sessions

    moved = Clock()
    monkeypatch.setattr(sessions, "time", moved)
    return moved


def test_an_idle_session_ends_with_a_message(app, client, auth, vendor, clock):
    app.config["SESSION_IDLE_TIMEOUT"] = 1.0
    auth.login()
    assert client.get("/webhooks").status_code == 200
    clock.advance(0.6)
    assert client.get("/webhooks").status_code == 200  # activity: the idle time starts again
    clock.advance(0.6)
    assert client.get("/webhooks").status_code == 200  # 1.2 s after login, 0.6 s after the last request
    clock.advance(1.3)
    response = client.get("/webhooks?status=active")
    assert response.headers["Location"] == "/login?next=/webhooks?status%3Dactive"
    assert "Your session ended after 1 second without activity. Log in again." in ended_reason(client, response)
    assert client.get("/webhooks").status_code == 302  # and it stays ended


def test_the_default_message_names_minutes(app, client, auth, vendor, clock):
    assert app.config["SESSION_IDLE_TIMEOUT"] == 1800 and app.config["SESSION_MAX_AGE"] == 43200
    auth.login()
    clock.advance(1801)
    assert "Your session ended after 30 minutes without activity." in ended_reason(client, client.get("/webhooks"))


def test_a_session_ends_after_its_max_age_even_when_busy(app, client, auth, vendor, clock):
    app.config["SESSION_MAX_AGE"] = 2.0
    auth.login()
    for _ in range(3):
        assert client.get("/webhooks").status_code == 200
        clock.advance(0.7)
    reason = ended_reason(client, client.get("/webhooks"))
    assert "Your session ended: a session lasts at most 2 seconds. Log in again." in reason


def test_polling_does_not_keep_a_session_alive(app, client, auth, vendor, hook, clock):
    app.config["SESSION_IDLE_TIMEOUT"] = 2.0
    auth.login()
    assert client.get(f"/webhooks/{hook.id}").status_code == 200
    headers = {"Accept": "application/json"}
    for _ in range(3):  # polls, more often than the idle timeout
        assert client.get(f"/webhooks/{hook.id}/live", headers=headers).status_code == 200
        assert client.get(f"/webhooks/live?ids={hook.id}", headers=headers).status_code == 200
        clock.advance(0.6)
    assert client.get(f"/webhooks/{hook.id}/live", headers=headers).status_code == 200
    clock.advance(0.5)  # idle 2.3 s since the page, polled moments ago
    poll = client.get(f"/webhooks/{hook.id}/live", headers=headers)
    assert poll.status_code == 401
    assert poll.json["error_code"] == "SESSION_ENDED"
    assert poll.json["message"] == "Your session ended after 2 seconds without activity. Log in again."
    assert poll.json["login_url"] == "/login"
    assert client.get("/webhooks").status_code == 302


def test_a_persons_request_keeps_it_alive(app, client, auth, vendor, hook, clock):
    app.config["SESSION_IDLE_TIMEOUT"] = 1.0
    auth.login()
    for _ in range(5):  # 4 s in all, never 1 s without a page
        assert client.get(f"/webhooks/{hook.id}").status_code == 200
        clock.advance(0.8)
    assert client.get(f"/webhooks/{hook.id}/live").status_code == 200


def test_the_remember_cookie_starts_a_new_session(app, client, vendor, clock):
    app.config["SESSION_IDLE_TIMEOUT"] = 0.5
    client.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    assert client.get_cookie(REMEMBER) is not None
    clock.advance(0.7)
    assert client.get("/webhooks").status_code == 200  # the session ended; the cookie started another
    drop_session(client)
    assert client.get("/webhooks").status_code == 200


def test_the_remember_cookie_has_its_own_lifetime(app, client, vendor, clock):
    app.config["REMEMBER_COOKIE_DURATION"] = timedelta(seconds=3)  # the login time is kept in whole seconds
    client.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    cookie = client.get_cookie(REMEMBER)
    drop_session(client)
    assert client.get("/webhooks").status_code == 200
    clock.advance(4.1)
    drop_session(client)
    client.set_cookie(REMEMBER, cookie.value, domain="localhost")  # a browser that kept it too long
    assert client.get("/webhooks").status_code == 302


def test_logout_ends_the_remember_cookie(app, client, vendor):
    client.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    cookie = client.get_cookie(REMEMBER)
    client.post("/logout")
    client.set_cookie(REMEMBER, cookie.value, domain="localhost")
    assert client.get("/webhooks").status_code == 302


def test_a_password_only_remember_cookie_stops_when_two_factor_is_turned_on(app, client, vendor):
    client.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    stale = client.get_cookie(REMEMBER).value
    enrol(client)
    fresh = client.get_cookie(REMEMBER).value
    assert fresh != stale  # this browser's cookie is made again with the new state
    drop_session(client)
    client.set_cookie(REMEMBER, stale, domain="localhost")
    assert client.get("/webhooks").status_code == 302  # another browser's old cookie is refused
    drop_session(client)
    client.set_cookie(REMEMBER, fresh, domain="localhost")
    assert client.get("/webhooks").status_code == 200


def test_a_remember_cookie_from_a_two_factor_login_works_and_stops_when_it_is_removed(app, client, vendor):
    auth_client = app.test_client()
    auth_client.post("/login", data={"email": vendor.email, "password": PASSWORD})
    seed, _codes = enrol(auth_client)
    forget_last_step(vendor.email)
    client.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    assert client.get_cookie(REMEMBER) is None  # not before the code
    assert client.post("/login/code", data={"code": code(seed)}).status_code == 302
    cookie = client.get_cookie(REMEMBER).value
    drop_session(client)
    assert client.get("/webhooks").status_code == 200
    user = db.session.scalar(db.select(User).where(User.email == vendor.email))
    two_factor.remove(user)  # turned off elsewhere: the cookie's state no longer matches
    drop_session(client)
    client.set_cookie(REMEMBER, cookie, domain="localhost")
    assert client.get("/webhooks").status_code == 302


@pytest.mark.parametrize("path", ["/login", "/healthz", "/public/v1/notifications/webhooks"])
def test_pages_without_a_session_are_unaffected(client, path):
    assert client.get(path).status_code in (200, 401)
