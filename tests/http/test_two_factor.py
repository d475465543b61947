"""Two-factor login (docs/security.md, "Two-factor login"): enrolment on the Security page,
login with a code or a recovery code (once), a code used once, throttling, the account's
requirement, and removal."""

from __future__ import annotations

import html

import pyotp
import pytest

from tests.conftest import PASSWORD, make_tenant
from tests.two_factor import code, enrol, forget_last_step, seed_on_page
from webhookapp.infra import crypto
from webhookapp.infra.extensions import db
from webhookapp.models import RecoveryCode, User


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def user_of(email: str) -> User:
    user = db.session.scalar(db.select(User).where(User.email == email))
    assert user is not None
    return user


def password_step(client, email: str = "alice@acme.test", **extra):
    return client.post("/login", data={"email": email, "password": PASSWORD, **extra})


def test_enrolment_shows_a_qr_code_and_the_uri_and_needs_a_code(client, auth, vendor):
    auth.login()
    page = client.get("/settings/security/two-factor")
    assert page.headers["Cache-Control"] == "no-store"
    body = text(page)
    seed = seed_on_page(body)
    assert f"otpauth://totp/webhookapp:alice%40acme.test?secret={seed}&amp;issuer=webhookapp" in page.get_data(
        as_text=True
    )
    assert 'src="data:image/svg+xml' in body  # a data: URI the CSP allows, no script
    assert seed_on_page(text(client.get("/settings/security/two-factor"))) == seed  # a reload keeps the key
    not_the_code = "000000" if code(seed) != "000000" else "111111"
    wrong = client.post("/settings/security/two-factor", data={"code": not_the_code})
    assert wrong.status_code == 400
    assert "That code is not the app's current code." in text(wrong)
    assert user_of(vendor.email).totp_secret is None
    done = client.post("/settings/security/two-factor", data={"code": code(seed)})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    assert "Your recovery codes" in text(done)
    user = user_of(vendor.email)
    assert user.totp_secret is not None and seed not in user.totp_secret  # stored encrypted
    assert crypto.current().decrypt(user.totp_secret, context=f"users.totp_secret:{user.id}") == seed
    hashes = db.session.scalars(db.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert len(hashes) == 10 and not any(code_ in done.get_data(as_text=True) for code_ in hashes)
    assert "Recovery codes left: 10" in text(client.get("/settings/security"))


def test_login_asks_for_the_code_after_the_password(client, vendor):
    password_step(client)
    seed, _codes = enrol(client)
    client.post("/logout")
    step = password_step(client)
    assert step.headers["Location"] == "/login/code"
    assert client.get("/webhooks").status_code == 302  # not logged in before the code
    wrong = client.post("/login/code", data={"code": "12345"})
    assert "That code is not valid, or was already used." in text(wrong)
    right = client.post("/login/code", data={"code": code(seed, 1)})  # the enrolment used this step's
    assert right.headers["Location"] == "/webhooks"
    assert client.get("/webhooks").status_code == 200


def test_a_code_already_used_is_refused(client, app, vendor):
    password_step(client)
    seed, _codes = enrol(client)
    client.post("/logout")
    password_step(client)
    used = code(seed, 1)
    assert client.post("/login/code", data={"code": used}).status_code == 302
    client.post("/logout")
    password_step(client)
    # The same code again (a replay), and the current step's (older than the one used).
    assert client.post("/login/code", data={"code": used}).status_code == 200
    assert client.post("/login/code", data={"code": code(seed)}).status_code == 200
    assert client.get("/webhooks").status_code == 302


def test_a_recovery_code_works_once(client, vendor):
    password_step(client)
    _seed, codes = enrol(client)
    client.post("/logout")
    password_step(client)
    assert client.post("/login/code", data={"code": codes[0].upper()}).headers["Location"] == "/webhooks"
    assert "Recovery codes left: 9" in text(client.get("/settings/security"))
    client.post("/logout")
    password_step(client)
    assert "already used" in text(client.post("/login/code", data={"code": codes[0]}))
    assert client.post("/login/code", data={"code": codes[1]}).status_code == 302


def test_the_code_step_expires(client, app, vendor):
    password_step(client)
    seed, _codes = enrol(client)
    client.post("/logout")
    app.config["TWO_FACTOR_LOGIN_WINDOW"] = 0
    password_step(client)
    late = client.post("/login/code", data={"code": code(seed, 1)})
    assert late.headers["Location"] == "/login"
    assert client.get("/webhooks").status_code == 302


def test_the_code_step_needs_the_password_step(client, vendor):
    assert client.get("/login/code").headers["Location"] == "/login"


def test_wrong_codes_are_throttled_with_the_passwords(client, app, vendor):
    app.config["LOGIN_FAILURE_LIMIT"] = "4 per 15 minutes"
    password_step(client)
    seed, _codes = enrol(client)
    client.post("/logout")
    client.post("/login", data={"email": vendor.email, "password": "wrong"})  # one wrong password
    password_step(client)
    for _ in range(3):
        assert client.post("/login/code", data={"code": "000000"}).status_code == 200
    throttled = client.post("/login/code", data={"code": code(seed, 1)}, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert throttled.status_code == 429
    assert "Too many failed attempts" in text(throttled)
    assert client.get("/webhooks").status_code == 302


def test_the_account_can_require_two_factor_login(client, app, vendor):
    admin = user_of(vendor.email)
    admin.is_admin = True
    db.session.commit()
    colleague = make_tenant("vendor", "Unrelated", "zed@other.test")
    password_step(client)
    assert client.post("/settings/security/two-factor/required", data={"required": "y"}).status_code == 302
    assert user_of(vendor.email).account.require_two_factor
    # The admin has no second factor yet: every page sends them to set it up.
    assert client.get("/webhooks").headers["Location"] == "/settings/security/two-factor"
    assert client.get("/settings/tokens").headers["Location"] == "/settings/security/two-factor"
    enrol(client)
    assert client.get("/webhooks").status_code == 200
    # Another account is not affected.
    other = app.test_client()
    password_step(other, colleague.email)
    assert other.get("/webhooks").status_code == 200


def test_a_user_of_a_requiring_account_enrols_right_after_the_password(client, app, vendor):
    user_of(vendor.email).account.require_two_factor = True
    db.session.commit()
    login = password_step(client)
    assert client.get(login.headers["Location"]).headers["Location"] == "/settings/security/two-factor"
    assert client.get("/webhooks/live?ids=x").status_code in (200, 302)  # polls are not pages
    enrol(client)
    assert client.get("/webhooks").status_code == 200


def test_only_admins_set_the_requirement(client, vendor):
    password_step(client)
    assert client.post("/settings/security/two-factor/required", data={"required": "y"}).status_code == 403
    assert not user_of(vendor.email).account.require_two_factor
    assert "Require two-factor login" not in text(client.get("/settings/security"))


def test_removal_needs_the_password_again_and_a_code(client, app, vendor):
    password_step(client)
    seed, _codes = enrol(client)
    with client.session_transaction() as session:
        session["reauth_at"] -= 301
    asked = client.get("/settings/security/two-factor/remove")
    assert asked.headers["Location"] == "/confirm-password?next=/settings/security/two-factor/remove"
    assert client.post("/settings/security/two-factor/remove", data={"code": code(seed, 1)}).status_code == 302
    assert user_of(vendor.email).two_factor_enabled  # nothing removed without the password
    wrong = client.post(asked.headers["Location"], data={"password": "not it"})
    assert "That is not your password." in text(wrong)
    back = client.post(asked.headers["Location"], data={"password": PASSWORD})
    assert back.headers["Location"] == "/settings/security/two-factor/remove"
    refused = client.post("/settings/security/two-factor/remove", data={"code": "000000"})
    assert refused.status_code == 400 and user_of(vendor.email).two_factor_enabled
    done = client.post("/settings/security/two-factor/remove", data={"code": code(seed, 1)})
    assert done.headers["Location"] == "/settings/security"
    user = user_of(vendor.email)
    assert user.totp_secret is None
    assert db.session.scalar(db.select(db.func.count()).select_from(RecoveryCode)) == 0
    client.post("/logout")
    assert password_step(client).headers["Location"] == "/webhooks"  # the password alone again


def test_a_pending_login_ends_with_a_new_password(client, app, vendor):
    password_step(client)
    seed, _codes = enrol(client)
    client.post("/logout")
    password_step(client)
    user = user_of(vendor.email)
    user.set_password("a completely new passphrase")
    db.session.commit()
    forget_last_step(vendor.email)
    assert client.post("/login/code", data={"code": pyotp.TOTP(seed).now()}).headers["Location"] == "/login"


@pytest.mark.parametrize("path", ["/settings/security", "/settings/security/two-factor", "/settings/security/password"])
def test_the_security_pages_need_a_login(client, path):
    assert client.get(path).headers["Location"].startswith("/login")
