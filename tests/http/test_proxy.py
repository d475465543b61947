"""``WEBHOOK_PROXY_COUNT``: behind that many reverse proxies the client's address is read from
``X-Forwarded-For`` (werkzeug's ``ProxyFix``); without it nobody's forwarded headers are believed
(docs/deploying.md, "nginx")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import database_url
from tests.engine import api_token
from webhookapp import create_app
from webhookapp.engine import runtime
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import ApiToken

PROXY = {"REMOTE_ADDR": "127.0.0.1"}  # nginx on the same machine, as deploy/nginx/webhookapp.conf has it


@pytest.fixture
def proxied(app: Flask, tmp_path, redis_url: str) -> Iterator[FlaskClient]:
    """A client of a second app on the same database, told that one proxy stands in front."""
    overrides = {"SQLALCHEMY_DATABASE_URI": database_url(tmp_path), "REDIS_URL": redis_url, "WEBHOOK_PROXY_COUNT": 1}
    proxied_app = create_app("testing", overrides)
    yield proxied_app.test_client()
    runtime.of(proxied_app).close()
    connection = proxied_app.extensions.get("webhookapp.redis")  # /metrics read the queues with it
    if connection is not None:
        connection.close()
    with proxied_app.app_context():
        dispose_engines()


def test_behind_one_proxy_the_forwarded_client_address_is_the_requests(proxied, vendor):
    # /metrics answers loopback only (WEBHOOK_METRICS_NETWORKS): the proxy's own address no
    # longer counts, the client's does.
    outside = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    assert proxied.get("/metrics", environ_base=PROXY, headers=outside).status_code == 404
    assert proxied.get("/metrics", environ_base=PROXY, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    # Only the last hop is believed: an address the client wrote itself before it changes nothing.
    spoofed = {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}
    assert proxied.get("/metrics", environ_base=PROXY, headers=spoofed).status_code == 404

    token = api_token(vendor.account)
    answer = proxied.get(
        "/public/v1/notifications/webhooks", environ_base=PROXY, headers={"Authorization": f"ApiKey {token}", **outside}
    )
    assert answer.status_code == 200
    db.session.expire_all()
    used = db.session.scalar(db.select(ApiToken).where(ApiToken.account_id == vendor.account.id))
    assert used is not None and used.last_used_address == "203.0.113.7"


def test_without_the_setting_forwarded_headers_are_ignored(client):
    assert (
        client.get(
            "/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}, headers={"X-Forwarded-For": "127.0.0.1"}
        ).status_code
        == 404
    )
    assert client.get("/metrics", environ_base=PROXY, headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
