"""The SSRF guard and the sender's limits (docs/architecture.md, "Delivery contract" and
"Security"), unit and through real deliveries."""

from __future__ import annotations

import ipaddress
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from webhookapp.engine import runtime
from webhookapp.engine.transport.ssrf import blocked_reason, parse_networks
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

BLOCKED = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "198.18.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888"]
LOOPBACK_ALLOWED = parse_networks(["127.0.0.0/8"])


@pytest.mark.parametrize("address", BLOCKED)
def test_blocked_addresses_are_refused(address):
    reason = blocked_reason(ipaddress.ip_address(address))
    assert isinstance(reason, str) and reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_accepted(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.255.0.9", "::ffff:127.0.0.1"])
def test_the_allow_list_exempts_its_networks_and_their_mapped_forms(address):
    assert blocked_reason(ipaddress.ip_address(address), LOOPBACK_ALLOWED) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "::ffff:10.0.0.1", "::1", "169.254.169.254"])
def test_the_allow_list_exempts_nothing_else(address):
    assert blocked_reason(ipaddress.ip_address(address), LOOPBACK_ALLOWED)


def test_parse_networks_skips_blanks_and_accepts_host_bits():
    assert parse_networks([" 127.0.0.1/8 ", "", "::1/128"]) == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


# --- Through the delivery engine ------------------------------------------------------------


@pytest.fixture
def fresh_sender(app) -> Iterator[None]:
    """A runtime of the test's own: its Sender is built at first use, from the config as the test set it."""
    made = runtime.install(app)
    yield
    made.close()


@pytest.fixture
def no_allow_list(app, fresh_sender) -> None:
    app.config["WEBHOOK_ALLOWED_NETWORKS"] = []  # production: nothing exempt


def deliver_once(app, client, tenant, url: str) -> Attempt:
    """Post one event for a webhook pointing at ``url``, run a worker, return the single attempt."""
    hook = make_webhook(tenant, external_url=url)
    token = api_token(tenant.account)
    status, _body = post_event(client, token, object_class="fulfillment_request", product_id=hook.product_id)
    assert status == 202
    run_worker(app)
    db.session.expire_all()
    [attempt] = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id)).all()
    stored = db.session.get(Webhook, hook.id)
    assert stored.triggers_count == 1
    assert (stored.success_count, stored.failure_count) == ((1, 0) if attempt.success else (0, 1))
    return attempt


def assert_refused(attempt: Attempt, *names: str) -> None:
    assert attempt.success is False
    assert attempt.response_status is None and attempt.response_body is None
    assert attempt.error.startswith("Blocked: "), attempt.error
    assert any(name in attempt.error for name in names), attempt.error


def test_the_handler_on_loopback_is_refused_without_the_allow_list(app, client, vendor, handler, no_allow_list):
    url = handler.behave("/guarded")
    attempt = deliver_once(app, client, vendor, url)
    assert_refused(attempt, "127.0.0.1")
    assert attempt.error == "Blocked: 127.0.0.1 is a loopback address"
    assert attempt.request_url == url
    assert handler.received == []


def test_an_ipv4_mapped_loopback_url_is_refused(app, client, vendor, handler, no_allow_list):
    port = handler.server.server_address[1]
    attempt = deliver_once(app, client, vendor, f"http://[::ffff:127.0.0.1]:{port}/mapped")
    assert_refused(attempt, "::ffff:127.0.0.1")
    assert handler.received == []


def test_localhost_by_name_is_refused(app, client, vendor, handler, no_allow_list):
    port = handler.server.server_address[1]
    attempt = deliver_once(app, client, vendor, f"http://localhost:{port}/named")
    assert_refused(attempt, "localhost")
    assert "127.0.0.1" in attempt.error or "::1" in attempt.error
    assert handler.received == []


def test_the_test_allow_list_lets_the_same_delivery_through(app, client, vendor, handler, fresh_sender):
    assert app.config["WEBHOOK_ALLOWED_NETWORKS"] == ["127.0.0.0/8", "::1/128"]
    attempt = deliver_once(app, client, vendor, handler.behave("/guarded"))
    assert attempt.success is True and attempt.response_status == 200 and attempt.error is None
    assert len(handler.wait_for("/guarded")) == 1


def test_a_private_address_is_refused_before_any_connection(app, client, vendor, fresh_sender):
    attempt = deliver_once(app, client, vendor, "http://10.255.255.1/hook")
    assert_refused(attempt, "10.255.255.1")
    assert "private" in attempt.error
    # Refused, not timed out (the address does not answer): no connection was tried. A generous
    # bound all the same, far below the delivery timeout a connection attempt would wait for.
    assert attempt.duration_ms < 10_000 < app.config["WEBHOOK_DELIVERY_TIMEOUT"] * 1000


def test_redirects_are_not_followed(app, client, vendor, handler, fresh_sender):
    target = handler.behave("/target")
    attempt = deliver_once(app, client, vendor, handler.behave("/moved", status=302, headers={"Location": target}))
    assert attempt.success is False and attempt.response_status == 302
    assert "Redirect" in attempt.error and target in attempt.error
    assert len(handler.requests_to("/moved")) == 1
    assert handler.requests_to("/target") == []


def test_the_response_body_is_read_up_to_64_kib(app, client, vendor, handler, fresh_sender):
    attempt = deliver_once(app, client, vendor, handler.behave("/big", body=b"x" * 200 * 1024))
    assert attempt.success is True and attempt.response_status == 200
    assert attempt.response_body == "x" * 65536
    assert attempt.response_truncated is True


def test_a_response_of_exactly_64_kib_is_not_truncated(app, client, vendor, handler, fresh_sender):
    attempt = deliver_once(app, client, vendor, handler.behave("/full", body=b"y" * 65536))
    assert len(attempt.response_body) == 65536 and attempt.response_truncated is False


def test_a_slow_handler_times_out(app, client, vendor, handler, fresh_sender):
    app.config["WEBHOOK_DELIVERY_TIMEOUT"] = 0.5
    attempt = deliver_once(app, client, vendor, handler.behave("/slow", held_until=threading.Event()))
    assert attempt.success is False and attempt.response_status is None
    assert attempt.error == "No answer within 0.5 s"
    # At least the timeout (stored times: a busy machine only adds), and cut off near it.
    assert 400 <= attempt.duration_ms < 5000
    assert len(handler.requests_to("/slow")) == 1


class TrickleServer(socketserver.ThreadingTCPServer):
    """An HTTP handler that sends its headers at once and then one body byte every ``gap`` seconds.

    Only the first connection trickles; any later one is answered at once, so a resend ends quickly.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, length: int, gap: float):
        self.length, self.gap, self.connections = length, gap, 0
        super().__init__(("127.0.0.1", 0), TrickleHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/trickle"

    def handle_error(self, request, client_address) -> None:
        pass  # the sender hanging up is what these tests expect

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class TrickleHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1
        gap = self.server.gap if self.server.connections == 1 else 0
        self.request.recv(65536)
        self.request.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.server.length}\r\n\r\n".encode())
        for _ in range(self.server.length):
            time.sleep(gap)
            self.request.sendall(b"x")


@pytest.fixture
def trickle() -> Iterator[TrickleServer]:
    server = TrickleServer(length=40, gap=0.25)
    yield server
    server.close()


def test_a_handler_trickling_its_body_is_cut_off_at_the_delivery_timeout(app, client, vendor, trickle, fresh_sender):
    app.config["WEBHOOK_DELIVERY_TIMEOUT"] = 0.5  # each byte comes within 0.5 s; the whole body takes 10 s
    attempt = deliver_once(app, client, vendor, trickle.url)  # asserts a single attempt
    assert attempt.success is False and attempt.error == "The answer did not arrive in full within 0.5 s"
    assert attempt.duration_ms < 5000  # cut off near the timeout, long before the body's end
    assert trickle.connections == 1  # the lease (2 x timeout) never ran out, so nothing was sent twice
