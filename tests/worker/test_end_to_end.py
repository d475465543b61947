"""The real processes: gunicorn serving the app, a worker, events over HTTP, a handler listening."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest
import requests

from tests.conftest import make_webhook
from tests.engine import ROOT, api_token, start_worker, stop, worker_env
from tests.servers import free_port

pytestmark = pytest.mark.slow  # gunicorn and a worker, started for real


def start_web(app, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=worker_env(app),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    stop(process)
    raise AssertionError("gunicorn did not start")


def test_events_posted_over_http_reach_the_handler(app, vendor, handler):
    post_hook = make_webhook(vendor, label="POST hook", external_url=handler.behave("/e2e-post"))
    get_hook = make_webhook(vendor, label="GET hook", external_url=handler.behave("/e2e-get"), http_method="GET")
    token = api_token(vendor.account)
    port = free_port()
    web = start_web(app, port)
    worker = start_worker(app)
    try:
        response = requests.post(
            f"http://127.0.0.1:{port}/public/v1/events",
            json={"object_class": "fulfillment_request", "product_id": post_hook.product_id, "id": "order-1"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert response.status_code == 202, response.text
        assert response.json()["webhooks"] == sorted([post_hook.id, get_hook.id])
        [post] = handler.wait_for("/e2e-post", 1, timeout=15)
        [get] = handler.wait_for("/e2e-get", 1, timeout=15)
        claims = jwt.decode(post.headers["Authorization"].split()[1], post_hook.jwt_secret, algorithms=["HS256"])
        assert claims["webhook_id"] == post_hook.id and post.json()["webhook_id"] == post_hook.id
        assert get.method == "GET" and get.body == b""

        again = requests.post(
            f"http://127.0.0.1:{port}/public/v1/events",
            json={"object_class": "fulfillment_request", "product_id": post_hook.product_id, "id": "order-1"},
            headers={"Authorization": f"ApiKey {token}"},
            timeout=5,
        )
        assert again.status_code == 200 and again.json()["duplicate"] is True
    finally:
        stop(worker)
        stop(web)
