"""Why a call got no answer, in one short sentence (docs/architecture.md, "Delivery contract"): a failure of each
kind against real sockets on 127.0.0.1, through Send test request; and one delivery that fails
until Out of order, read where a person sees it: the attempt page (with the technical detail
folded away), the Last failure, the banner, the alert mail and the API."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.http.test_send_test import edit_form, result_box
from tests.pages import text
from tests.servers import HandlerServer, ResettingServer, free_port, serve_tls, tls_certificates
from webhookapp.engine import runtime
from webhookapp.engine.maintenance import alerts
from webhookapp.engine.transport import client_tls
from webhookapp.engine.types import PreparedCall
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

INTERNAL = re.compile(r"GuardedHTTP|AllowedHTTP|Max retries|NewConnectionError|urllib3|Errno|Caused by")


def send_test(client, auth, vendor, url: str) -> str:
    """Send test request from the edit page to ``url``: the result box's text, checked for
    internal names, and the technical detail under it, if any."""
    hook = make_webhook(vendor)
    auth.login()
    response = client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, external_url=url))
    assert response.status_code == 200
    box = result_box(text(response))
    assert "test-result-bad" in box
    return box


def sentence(box: str) -> str:
    """The result's error line, without its technical detail."""
    shown = box.split("Technical detail", 1)[0]
    assert not INTERNAL.search(shown), shown
    match = re.search(r" ms</p> <p>(.*?)</p>", shown)
    assert match, shown
    return match.group(1)


def test_a_refused_connection(client, auth, vendor):
    port = free_port()  # nothing listens there
    box = send_test(client, auth, vendor, f"http://127.0.0.1:{port}/webhook")
    assert sentence(box) == f"Connection refused by 127.0.0.1:{port}"
    assert "<summary>Technical detail</summary>" in box and "Connection refused" in box.split("summary", 2)[2]


def test_no_answer_within_the_timeout(app, client, auth, vendor, handler):
    app.config["WEBHOOK_VALIDATION_TIMEOUT"] = 0.5  # Send test request's timeout
    url = handler.behave("/held", held_until=threading.Event())
    assert sentence(send_test(client, auth, vendor, url)) == "No answer within 0.5 s"


def test_a_name_not_found(client, auth, vendor):
    try:  # .invalid never resolves (RFC 6761); a machine without DNS cannot even ask
        socket.getaddrinfo("handler.invalid", 80)
    except socket.gaierror as exc:
        if exc.errno != socket.EAI_NONAME:
            pytest.skip(f"no DNS answer here: {exc.strerror}")
    box = send_test(client, auth, vendor, "http://handler.invalid/webhook")
    assert sentence(box) == "Name not found: handler.invalid"


@pytest.fixture
def tls_handler() -> Iterator[HandlerServer]:
    server = HandlerServer()
    yield server
    server.close()


def test_an_untrusted_certificate(client, auth, vendor, tls_handler, tmp_path):
    _ca, certificate, key = tls_certificates(tmp_path, expired=False)
    url = serve_tls(tls_handler, certificate, key) + "/webhook"
    box = send_test(client, auth, vendor, url)
    assert sentence(box) == "TLS: unable to get local issuer certificate"
    assert tls_handler.received == []


def test_an_expired_certificate(client, auth, vendor, tls_handler, tmp_path, monkeypatch):
    ca, certificate, key = tls_certificates(tmp_path, expired=True)
    # The sender trusts requests' CA bundle: this one adds the test's CA, so that the expiry is
    # what the check finds (an unknown issuer is found first).
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(Path(requests.utils.DEFAULT_CA_BUNDLE_PATH).read_bytes() + ca.read_bytes())
    monkeypatch.setattr(client_tls, "PUBLIC_CAS", str(bundle))
    url = serve_tls(tls_handler, certificate, key) + "/webhook"
    assert sentence(send_test(client, auth, vendor, url)) == "TLS: certificate has expired"
    assert tls_handler.received == []


def test_a_connection_reset_mid_answer(client, auth, vendor):
    server = ResettingServer()  # the status line, headers and the body's first bytes, then a reset
    try:
        box = send_test(client, auth, vendor, server.url)
    finally:
        server.close()
    assert sentence(box) == f"Connection reset by 127.0.0.1:{server.port} while reading the answer"


def test_an_address_the_ssrf_guard_blocks(client, auth, vendor):
    """Loopback is allowed in tests (WEBHOOK_ALLOWED_NETWORKS); a private address stays blocked."""
    box = send_test(client, auth, vendor, "http://10.0.0.1/webhook")
    assert sentence(box) == "Blocked: 10.0.0.1 is a private address"


def test_a_failure_reads_as_one_sentence_wherever_it_is_shown(app, client, auth, vendor):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1  # the first failure makes the webhook Out of order
    port = free_port()
    hook = make_webhook(vendor, external_url=f"http://127.0.0.1:{port}/webhook")
    status, _ = post_event(client, api_token(vendor.account), object_class="fulfillment_request",
                           product_id=hook.product_id)  # fmt: skip
    assert status == 202
    run_worker(app)
    db.session.expire_all()
    said = f"Connection refused by 127.0.0.1:{port}"
    attempt = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id)).one()
    assert attempt.error == said and "Connection refused" in attempt.error_detail
    stored = db.session.get(Webhook, hook.id)
    assert stored.out_of_order and stored.last_failure_info["error"] == said

    auth.login()
    details = text(client.get(f"/webhooks/{hook.id}"))
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", details))
    assert f"The last one failed ({said}): see the attempt." in words  # the banner
    assert details.count(said) == 2 and not INTERNAL.search(details)  # and the Last failure
    page = text(client.get(f"/webhooks/{hook.id}/attempts/{attempt.id}"))
    shown, folded = page.split("<summary>Technical detail</summary>", 1)
    assert said in shown and not INTERNAL.search(shown)
    assert "NewConnectionError" in folded and "Connection refused" in folded  # kept for who wants it

    subject, mail = alerts.message(stored, stored.product)
    assert f"failed ({said})." in mail and not INTERNAL.search(subject + mail)

    listed = client.get(f"/public/v1/notifications/webhooks/{hook.id}/attempts",
                        headers={"Authorization": f"ApiKey {api_token(vendor.account)}"})  # fmt: skip
    assert [item["error"] for item in listed.get_json()] == [said]
    assert not INTERNAL.search(listed.get_data(as_text=True))


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("ftp://127.0.0.1/hook", {}),  # a scheme no delivery uses
        ("http:///hook", {}),  # no host
        ("http://127.0.0.1:{port}/hook", {"X-Injected": "a\r\nX-Evil: 1"}),  # a line break in a value
    ],
)
def test_a_call_the_client_refuses_is_a_failed_attempt_and_sends_nothing(app, handler, url, headers):
    """What the forms refuse can still reach the sender (a row written by hand, an old release):
    the attempt fails with a sentence, nothing goes out, and the next call to the handler works."""
    sender = runtime.of(app).delivery().sender
    port = handler.url.rsplit(":", 1)[1]
    call = PreparedCall("POST", url.format(port=port), headers, b"{}", {})
    result = sender.send(call)
    assert not result.success and result.status is None
    assert result.error and result.error.startswith("The request to ") and not INTERNAL.search(result.error)
    assert handler.requests_to("/hook") == []
    good = PreparedCall("POST", handler.behave("/hook"), {}, b"{}", {})
    assert sender.send(good).success and len(handler.requests_to("/hook")) == 1
