"""The egress proxy (docs/operations.md, "Egress proxy"): deliveries, validation calls and Send
test request leave through a real proxy (proxy.py on 127.0.0.1), tunnelled to the address the
SSRF guard checked, a client certificate presented inside the tunnel; a blocked address never
reaches the proxy; a proxy that is down fails the attempt with a clear sentence, and the retry
goes through once it is back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
import trustme

from tests.conftest import make_webhook
from tests.egress_proxy import EgressProxy
from tests.engine import api_token, post_event, run_worker
from tests.http.test_client_tls import pem_pair, subject
from tests.http.test_send_test import edit_form, result_box
from tests.pages import text
from tests.servers import HandlerServer, serve_mutual_tls, serve_tls, tls_certificates
from webhookapp.core.times import utcnow
from webhookapp.engine import delivery, runtime
from webhookapp.engine.transport import client_tls
from webhookapp.engine.transport.proxy import EgressProxy as ProxySetting
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook


@pytest.fixture
def egress() -> Iterator[EgressProxy]:
    proxy = EgressProxy()
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def far_handler() -> Iterator[HandlerServer]:
    """A handler on 127.0.0.2: the only address the guard lets through in these tests, so that
    the proxy on 127.0.0.1 is reached only because it is exempt."""
    server = HandlerServer("127.0.0.2")
    yield server
    server.close()


def proxy_sockets(proxy: EgressProxy) -> set[tuple[str, int]]:
    """The local addresses of the proxy's sockets (its process and the workers it forked)."""
    assert proxy.process is not None
    parent = psutil.Process(proxy.process.pid)
    found: set[tuple[str, int]] = set()
    for process in [parent, *parent.children(recursive=True)]:
        found.update((c.laddr.ip, c.laddr.port) for c in process.net_connections("tcp") if c.laddr)
    return found


def attempts(hook_id: str) -> list[Attempt]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def test_a_delivery_leaves_through_the_proxy_to_the_checked_address(app, client, vendor, egress, far_handler):
    app.config.update(WEBHOOK_PROXY_URL=egress.url, WEBHOOK_ALLOWED_NETWORKS=["127.0.0.2/32"])
    release = threading.Event()
    hook = make_webhook(vendor, external_url=far_handler.behave("/hook", held_until=release))
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)

    def job() -> None:
        with app.app_context():
            delivery.drain(runtime.of(app), budget=30)  # not RQ's worker: its signals need the main thread
            db.session.remove()

    worker = threading.Thread(target=job)
    worker.start()
    try:
        [received] = far_handler.wait_for("/hook")
        # Asked while the answer is held, so the proxy's connection is surely still open.
        assert received.peer in proxy_sockets(egress)  # the handler's peer is the proxy, not us
    finally:
        release.set()
        worker.join(30)
    port = far_handler.server.server_address[1]
    assert egress.targets() == [f"CONNECT 127.0.0.2:{port}"]
    assert received.headers["Host"] == f"127.0.0.2:{port}"
    [attempt] = attempts(hook.id)
    assert attempt.success and attempt.response_status == 200


def test_send_test_and_validations_go_through_the_proxy_by_address(app, client, auth, vendor, egress, handler):
    """A host name is resolved and checked here; the proxy is asked for its address, and the
    handler still gets the name in ``Host``."""
    app.config.update(WEBHOOK_PROXY_URL=egress.url)
    port = handler.server.server_address[1]
    url = handler.behave("/test").replace("127.0.0.1", "localhost")
    hook = make_webhook(vendor, external_url=url)
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, external_url=url))
    assert "HTTP 200" in result_box(text(response))
    [sent] = handler.wait_for("/test")
    assert sent.headers["Host"] == f"localhost:{port}"
    assert egress.targets() == [f"CONNECT 127.0.0.1:{port}"]

    validator = make_webhook(vendor, label="Check", type_key="fulfillment_request.validator",
                             external_url=handler.behave("/validate", body=b'{"id": "PR-1"}'))  # fmt: skip
    answer = client.post(
        "/public/v1/validations",
        json={"type": "validator", "product_id": validator.product_id, "request": {"id": "PR-1"}},
        headers={"Authorization": f"ApiKey {api_token(vendor.account)}"},
    )
    assert answer.status_code == 200 and answer.get_json() == {"id": "PR-1"}
    handler.wait_for("/validate")
    assert egress.targets() == [f"CONNECT 127.0.0.1:{port}"] * 2


def test_an_https_handler_is_reached_through_the_tunnel(app, client, auth, vendor, egress, tmp_path, monkeypatch):
    """TLS runs inside the tunnel, end to end: the handler's certificate is checked for the URL's
    host, not for anything the proxy says."""
    ca, certificate, key = tls_certificates(tmp_path, expired=False)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(Path(requests.utils.DEFAULT_CA_BUNDLE_PATH).read_bytes() + ca.read_bytes())
    monkeypatch.setattr(client_tls, "PUBLIC_CAS", str(bundle))
    app.config.update(WEBHOOK_PROXY_URL=egress.url)
    server = HandlerServer()
    try:
        url = serve_tls(server, certificate, key) + "/secure"
        hook = make_webhook(vendor, external_url=url)
        auth.login()
        box = result_box(text(client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook))))
        assert "HTTP 200" in box and server.wait_for("/secure")
        assert egress.targets() == [f"CONNECT 127.0.0.1:{server.server.server_address[1]}"]
    finally:
        server.close()


def test_a_client_certificate_is_presented_through_the_tunnel(app, client, vendor, egress):
    """Mutual TLS inside the tunnel: the handler sees the webhook's client certificate, the proxy
    only a CONNECT; a webhook without one records the handler's TLS refusal."""
    server_ca, client_ca = trustme.CA(), trustme.CA()
    app.config.update(WEBHOOK_PROXY_URL=egress.url)
    server = HandlerServer()
    try:
        root = serve_mutual_tls(server, server_ca.issue_cert("127.0.0.1"), client_ca)
        cert, key = pem_pair(client_ca, "orders")
        trusted = server_ca.cert_pem.bytes().decode()
        hook = make_webhook(vendor, external_url=root + "/hook", tls_client_cert=cert, tls_client_key=key,
                            tls_ca_bundle=trusted)  # fmt: skip
        bare = make_webhook(vendor, external_url=root + "/bare", tls_ca_bundle=trusted, label="No certificate")
        post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
        run_worker(app)

        [received] = server.wait_for("/hook")
        assert subject(received) == "orders"
        [attempt] = attempts(hook.id)
        assert attempt.success and attempt.response_status == 200
        [refused] = attempts(bare.id)
        assert not refused.success and refused.response_status is None
        # The handler's alert, or its closing the connection, whichever the client reads first.
        # With TLS 1.3 the client's handshake is over before the handler checks the certificate,
        # so the close may come as the answer to the request: through the tunnel the proxy may
        # close it before the alert is read (about one run in six here).
        port = server.server.server_address[1]
        assert refused.error in (
            "TLS: tlsv13 alert certificate required",
            "TLS: the handler closed the connection during the handshake",
            f"127.0.0.1:{port} closed the connection without answering",
        ), refused.error_detail
        assert [request.path for request in server.received] == ["/hook"]
        assert egress.targets() == [f"CONNECT 127.0.0.1:{server.server.server_address[1]}"] * 2
    finally:
        server.close()


def test_a_blocked_address_is_refused_before_the_proxy_is_asked(app, client, auth, vendor, egress, handler):
    app.config.update(WEBHOOK_PROXY_URL=egress.url, WEBHOOK_ALLOWED_NETWORKS=["127.0.0.2/32"])
    port = handler.server.server_address[1]
    url = f"http://localhost:{port}/hook"
    hook = make_webhook(vendor, external_url=url)
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)

    [attempt] = attempts(hook.id)
    assert not attempt.success
    assert attempt.error == "Blocked: localhost resolves to 127.0.0.1, a loopback address"
    auth.login()
    box = result_box(text(client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, external_url=url))))
    assert "Blocked: localhost resolves to 127.0.0.1" in box
    assert egress.targets() == [] and handler.received == []


def test_a_proxy_that_is_down_fails_the_attempt_and_the_retry_goes_through(app, client, vendor, egress, handler):
    app.config.update(WEBHOOK_PROXY_URL=egress.url, WEBHOOK_RETRY_BASE=60)
    egress.stop()
    hook = make_webhook(vendor, external_url=handler.behave("/hook"))
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)  # the first attempt fails; its retry is a minute away

    [failed] = attempts(hook.id)
    assert not failed.success and failed.response_status is None
    assert failed.error == f"Cannot reach the egress proxy 127.0.0.1:{egress.port}: Connection refused"
    assert handler.received == []
    stored = db.session.get(Webhook, hook.id)
    assert stored.next_trigger_at is not None and stored.lease_id is None  # the trigger waits for its retry

    egress.start()
    # The minute passes: the retry falls due now, and goes through the proxy that is back.
    db.session.execute(db.update(Webhook).where(Webhook.id == hook.id).values(next_trigger_at=utcnow()))
    db.session.commit()
    assert delivery.drain(runtime.of(app), budget=10) == 1
    handler.wait_for("/hook")
    assert [(a.number, a.success) for a in attempts(hook.id)] == [(1, False), (2, True)]
    assert egress.targets() == [f"CONNECT 127.0.0.1:{handler.server.server_address[1]}"]


def test_the_proxy_asks_for_credentials_and_the_url_gives_them(app, client, auth, vendor, handler):
    proxy = EgressProxy(credentials="egress:s3cret")
    proxy.start()
    try:
        hook = make_webhook(vendor, external_url=handler.behave("/hook"))
        auth.login()
        app.config.update(WEBHOOK_PROXY_URL=proxy.url.replace("s3cret", "wrong"))
        box = result_box(text(client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook))))
        port = handler.server.server_address[1]
        assert (f"The egress proxy 127.0.0.1:{proxy.port} answered 407 Proxy Authentication Required to "
                f"CONNECT 127.0.0.1:{port}") in box  # fmt: skip
        assert "wrong" not in box and handler.received == []

        app.config.update(WEBHOOK_PROXY_URL=proxy.url)
        app.extensions["webhookapp.runtime"].close()  # a sender is built with the setting of its time
        box = result_box(text(client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook))))
        assert "HTTP 200" in box and handler.wait_for("/hook")
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.internal:3128", ProxySetting("proxy.internal", 3128)),
        ("http://u%40x:p%3Aw@10.0.0.5:8080", ProxySetting("10.0.0.5", 8080, "Basic dUB4OnA6dw==")),
        ("http://[fd00::5]:3128", ProxySetting("fd00::5", 3128)),
    ],
)
def test_the_proxy_url_is_read(url, expected):
    assert ProxySetting.parse(url) == expected


@pytest.mark.parametrize("url", ["https://proxy:3128", "socks5://proxy:1080", "http://:3128", "http://proxy:99999"])
def test_a_proxy_url_the_transport_cannot_use_is_refused(url):
    with pytest.raises(ValueError, match="WEBHOOK_PROXY_URL"):
        ProxySetting.parse(url)
