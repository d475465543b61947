"""The change password page and the password policy (docs/security.md, "Passwords")."""

from __future__ import annotations

import html

import pytest

from tests.conftest import PASSWORD
from webhookapp.infra.extensions import db
from webhookapp.models import User
from webhookapp.services import accounts

NEW = "plum orchard telescope 42"
URL = "/settings/security/password"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def change(client, current: str = PASSWORD, new: str = NEW, again: str | None = None):
    return client.post(URL, data={"current_password": current, "new_password": new,
                                  "confirm": new if again is None else again})  # fmt: skip


@pytest.mark.parametrize(
    ("current", "new", "again", "field", "message"),
    [
        ("not my password", NEW, None, "current_password", "That is not your current password."),
        (PASSWORD, "short one", None, "new_password", "Password must be at least 12 characters (this one has 9)."),
        (PASSWORD, "password1234", None, "new_password",
         "This password is too easy to guess. This is a very common password. Add another word or two."),
        (PASSWORD, "alice@acme.test1", None, "new_password", "This password is too easy to guess."),
        (PASSWORD, NEW, NEW + "!", "confirm", "The two new passwords are not the same."),
    ],
)
def test_a_refused_change_says_why_next_to_the_field_and_changes_nothing(
    client, auth, vendor, current, new, again, field, message
):
    auth.login()
    response = change(client, current, new, again)
    assert response.status_code == 400
    body = text(response)
    assert message in body
    assert f'id="{field}-errors"' in body  # next to its field
    assert accounts.authenticate(vendor.email, PASSWORD) is not None


def test_a_change_ends_other_sessions_and_keeps_this_one(app, client, auth, vendor):
    other = app.test_client()
    other.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    remembered = other.get_cookie("remember_token").value
    auth.login()
    response = change(client)
    assert response.headers["Location"] == "/settings/security"
    assert "Your password was changed." in text(client.get("/settings/security"))
    assert client.get("/webhooks").status_code == 200  # this browser stays logged in
    assert other.get("/webhooks").status_code == 302  # the other session ended
    other.delete_cookie("session", domain="localhost")
    other.set_cookie("remember_token", remembered, domain="localhost")
    assert other.get("/webhooks").status_code == 302  # and its remember cookie
    assert accounts.authenticate(vendor.email, NEW) is not None
    assert accounts.authenticate(vendor.email, PASSWORD) is None


def test_a_remembered_browser_that_changes_the_password_stays_remembered(client, vendor):
    client.post("/login", data={"email": vendor.email, "password": PASSWORD, "remember": "y"})
    before = client.get_cookie("remember_token").value
    change(client)
    after = client.get_cookie("remember_token").value
    assert after != before
    client.delete_cookie("session", domain="localhost")
    assert client.get("/webhooks").status_code == 200


def test_wrong_current_passwords_are_throttled(app, client, auth, vendor):
    app.config["LOGIN_FAILURE_LIMIT"] = "3 per 15 minutes"
    auth.login()
    for _ in range(3):
        assert change(client, current="wrong").status_code == 400
    assert change(client).status_code == 429
    user = db.session.scalar(db.select(User).where(User.email == vendor.email))
    assert user.check_password(PASSWORD)


def test_the_demo_password_meets_the_policy(runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert accounts.authenticate("vendor@example.com", accounts.DEMO_PASSWORD) is not None
