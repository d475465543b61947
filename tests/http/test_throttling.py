"""Failed logins and failed API-token checks are throttled across processes (the counts live in
Redis): 429 with Retry-After and a clear message, even for the right password."""

from __future__ import annotations

import html

import pytest

from tests.conftest import PASSWORD, make_webhook
from tests.engine import api_token
from webhookapp.infra.extensions import dispose_engines

EVENTS = "/public/v1/events"


@pytest.fixture
def limits(app):
    app.config.update(LOGIN_FAILURE_LIMIT="5 per 15 minutes", TOKEN_FAILURE_LIMIT="5 per 15 minutes")


def log_in(client, email: str, password: str, address: str = "10.0.0.1"):
    return client.post("/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})  # fmt: skip


def test_failed_logins_for_one_account_are_throttled_even_for_the_right_password(client, vendor, limits):
    for number in range(5):
        assert log_in(client, "alice@acme.test", "wrong", address=f"10.0.0.{number}").status_code == 200
    response = log_in(client, "alice@acme.test", PASSWORD, address="10.0.9.9")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60 + 1  # the window, rounded up to a second
    assert "Too many failed logins for this account or from your address." in html.unescape(
        response.get_data(as_text=True)
    )
    assert client.get("/webhooks").status_code == 302  # not logged in


def test_failed_logins_from_one_address_are_throttled_for_every_account(client, vendor, other_vendor, limits):
    for number in range(5):
        log_in(client, f"nobody{number}@acme.test", "wrong")
    assert log_in(client, "mallory@other.test", PASSWORD).status_code == 429
    assert log_in(client, "mallory@other.test", PASSWORD, address="10.0.0.2").status_code == 302  # another address


def test_successful_logins_count_nothing(client, vendor, limits):
    for _ in range(8):
        assert log_in(client, "alice@acme.test", PASSWORD).status_code == 302
        client.post("/logout")


def test_the_count_is_shared_by_every_web_process(app, client, vendor, limits, redis_url):
    from webhookapp import create_app

    settings = {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": redis_url,
                "LOGIN_FAILURE_LIMIT": "5 per 15 minutes"}  # fmt: skip
    other_process = create_app("testing", settings)
    for _ in range(3):
        log_in(client, "alice@acme.test", "wrong")
    with other_process.test_client() as other:
        for _ in range(2):
            log_in(other, "alice@acme.test", "wrong", address="10.0.0.7")
    with other_process.app_context():
        dispose_engines()  # its connections, closed here rather than by the garbage collector
    assert log_in(client, "alice@acme.test", PASSWORD, address="10.0.0.8").status_code == 429


def test_failed_token_checks_are_throttled_per_address_and_a_valid_token_still_works(client, vendor, limits):
    hook = make_webhook(vendor)
    body = {"object_class": "fulfillment_request", "product_id": hook.product_id}
    guesses = [
        client.post(EVENTS, json=body, headers={"Authorization": f"ApiKey wrong-{n}"},
                    environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code
        for n in range(7)
    ]  # fmt: skip
    assert guesses == [401] * 5 + [429] * 2
    response = client.get("/public/v1/notifications/webhooks", headers={"Authorization": "ApiKey wrong"},
                          environ_base={"REMOTE_ADDR": "10.1.1.1"})  # fmt: skip
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error_code"] == "AUTH_429"
    valid = client.post(EVENTS, json=body, headers={"Authorization": f"ApiKey {api_token(vendor.account)}"},
                        environ_base={"REMOTE_ADDR": "10.1.1.1"})  # fmt: skip
    assert valid.status_code == 202
    other_address = client.post(EVENTS, json=body, headers={"Authorization": "ApiKey wrong"},
                                environ_base={"REMOTE_ADDR": "10.1.1.2"})  # fmt: skip
    assert other_address.status_code == 401


def test_nothing_is_throttled_when_redis_is_down(app, client, vendor, limits, redis_server):
    if redis_server is None:
        pytest.skip("the suite's Redis is not ours to stop")
    redis_server.stop()
    for _ in range(7):
        assert log_in(client, "alice@acme.test", "wrong").status_code == 200
    assert log_in(client, "alice@acme.test", PASSWORD).status_code == 302
