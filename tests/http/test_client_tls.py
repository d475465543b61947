"""Mutual TLS to handlers (docs/handlers.md, "Client certificates"): certificates made by trustme,
a real TLS handler on 127.0.0.1 that requires a client certificate, the checks when a
certificate is saved, the key kept encrypted and never shown, and no pooled connection shared
between two webhooks' certificates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.http.test_send_test import edit_form, result_box
from tests.pages import Wizard, text
from tests.servers import HandlerServer, serve_mutual_tls
from webhookapp.engine import runtime, signing
from webhookapp.engine.transport.client_tls import ClientTLS
from webhookapp.engine.types import PreparedCall, snapshot
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, AuditEntry, Webhook

API = "/public/v1/notifications/webhooks"


@pytest.fixture(scope="module")
def server_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    return trustme.CA()


def pem_pair(ca: trustme.CA, name: str, **dates: datetime) -> tuple[str, str]:
    """A client certificate (CN ``name``) issued by ``ca``, and its key, as PEM text."""
    leaf = ca.issue_cert(f"{name}.clients.example", common_name=name, **dates)
    return leaf.cert_chain_pems[0].bytes().decode(), leaf.private_key_pem.bytes().decode()


@pytest.fixture
def mtls_handler(server_ca: trustme.CA, client_ca: trustme.CA) -> Iterator[HandlerServer]:
    server = HandlerServer()
    server.https_url = serve_mutual_tls(server, server_ca.issue_cert("127.0.0.1"), client_ca)
    yield server
    server.close()


def subject(received: Any) -> str:
    """The common name of the client certificate a request came with."""
    fields = dict(pair[0] for pair in received.client_cert["subject"])
    return fields["commonName"]


def api(client, token: str, method: str, path: str = "", **body: Any):
    return client.open(API + path, method=method, json=body, headers={"Authorization": f"ApiKey {token}"})


def attempts(hook_id: str) -> list[Attempt]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def test_the_right_certificate_is_presented_and_the_delivery_succeeds(app, client, vendor, mtls_handler,
                                                                      server_ca, client_ca):  # fmt: skip
    cert, key = pem_pair(client_ca, "orders")
    hook = make_webhook(vendor, external_url=mtls_handler.https_url + "/hook", tls_client_cert=cert,
                        tls_client_key=key, tls_ca_bundle=server_ca.cert_pem.bytes().decode())  # fmt: skip
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)

    [received] = mtls_handler.wait_for("/hook")
    assert subject(received) == "orders"
    [attempt] = attempts(hook.id)
    assert attempt.success and attempt.response_status == 200
    # Stored encrypted, bound to its row and column; the certificate itself is public.
    stored = db.session.get(Webhook, hook.id)
    assert stored.tls_client_key_encrypted.startswith("enc1:") and "PRIVATE KEY" not in stored.tls_client_key_encrypted
    assert stored.tls_client_key == key.strip() and stored.tls_client_cert == cert.strip()


def test_without_a_certificate_the_attempt_records_the_tls_error(app, client, vendor, mtls_handler, server_ca):
    hook = make_webhook(vendor, external_url=mtls_handler.https_url + "/hook",
                        tls_ca_bundle=server_ca.cert_pem.bytes().decode())  # fmt: skip
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)

    [attempt] = attempts(hook.id)
    assert not attempt.success and attempt.response_status is None
    # The handler's alert, or its closing the connection, whichever the client reads first.
    # With TLS 1.3 the client's handshake is over before the handler checks the certificate, so
    # on a busy machine the close may come as the answer to the request.
    address = mtls_handler.https_url.split("//", 1)[1].split("/", 1)[0]
    assert attempt.error in (
        "TLS: tlsv13 alert certificate required",
        "TLS: the handler closed the connection during the handshake",
        f"{address} closed the connection without answering",
    ), attempt.error_detail
    assert mtls_handler.received == []


def test_the_ca_bundle_replaces_the_public_cas(app, client, vendor, mtls_handler, client_ca):
    """A CA bundle that does not hold the handler's issuer: the handler's certificate is refused."""
    cert, key = pem_pair(client_ca, "orders")
    other = trustme.CA().cert_pem.bytes().decode()
    hook = make_webhook(vendor, external_url=mtls_handler.https_url + "/hook", tls_client_cert=cert,
                        tls_client_key=key, tls_ca_bundle=other)  # fmt: skip
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    [attempt] = attempts(hook.id)
    assert attempt.error == "TLS: unable to get local issuer certificate"


def test_pooled_connections_are_never_shared_between_webhooks(app, mtls_handler, server_ca, client_ca):
    """Two webhooks, even with the same certificate, each get connections of their own; a webhook
    reuses its own kept-alive connection."""
    sender = runtime.of(app).delivery().sender
    ca = server_ca.cert_pem.bytes().decode()
    alpha, beta = pem_pair(client_ca, "alpha"), pem_pair(client_ca, "beta")
    identities = {
        "WH-000-000-001": ClientTLS("WH-000-000-001", *alpha, ca),
        "WH-000-000-002": ClientTLS("WH-000-000-002", *beta, ca),
        "WH-000-000-003": ClientTLS("WH-000-000-003", *alpha, ca),  # alpha's certificate, another webhook
    }
    url = mtls_handler.https_url + "/pool"
    order = ["WH-000-000-001", "WH-000-000-002", "WH-000-000-001", "WH-000-000-003", "WH-000-000-002"]
    for webhook_id in order:
        call = PreparedCall("POST", url, {"X-Webhook": webhook_id}, b"{}", {}, client_tls=identities[webhook_id])
        assert sender.send(call).status == 200

    received = mtls_handler.wait_for("/pool", len(order))
    ports: dict[str, set[int]] = {}
    for request in received:
        webhook_id = request.headers["X-Webhook"]
        assert subject(request) == {"WH-000-000-002": "beta"}.get(webhook_id, "alpha")
        ports.setdefault(webhook_id, set()).add(request.peer[1])
    # Kept alive: each webhook used one connection, and no two webhooks the same one.
    assert all(len(used) == 1 for used in ports.values()), ports
    assert len(set().union(*ports.values())) == 3


def test_the_key_is_never_shown_again(client, vendor, server_ca, client_ca):
    cert, key = pem_pair(client_ca, "orders")
    token = api_token(vendor.account)
    created = api(client, token, "POST", product_id=vendor.products[0].id, object_class="fulfillment_request",
                  type="event", label="Mutual", external_url="https://handler.example.com/hook", http_method="POST",
                  tls_client_cert=cert, tls_client_key=key)  # fmt: skip
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["tls_client_cert"] == cert.strip() and body["tls_client_key_set"] is True
    assert "tls_client_key" not in body and "PRIVATE KEY" not in created.get_data(as_text=True)
    hook_id = body["id"]
    assert "PRIVATE KEY" not in api(client, token, "GET", f"/{hook_id}").get_data(as_text=True)

    # An update without the key keeps it; the audit trail says the key changed, never what it is.
    ca = server_ca.cert_pem.bytes().decode()
    renamed = api(client, token, "PUT", f"/{hook_id}", label="Renamed", tls_ca_bundle=ca)
    assert renamed.status_code == 200 and renamed.get_json()["tls_client_key_set"] is True
    assert db.session.get(Webhook, hook_id).tls_client_key == key.strip()
    entries = db.session.scalars(db.select(AuditEntry).where(AuditEntry.object_id == hook_id)).all()
    assert entries and all("PRIVATE KEY" not in str(entry.changes) for entry in entries)
    assert {"tls_client_key": {"changed": True}}.items() <= entries[0].changes.items()

    # An emptied certificate removes it with its key.
    removed = api(client, token, "PUT", f"/{hook_id}", tls_client_cert="")
    assert removed.get_json()["tls_client_cert"] is None and removed.get_json()["tls_client_key_set"] is False
    db.session.expire_all()
    assert db.session.get(Webhook, hook_id).tls_client_key_encrypted is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ("expired", "tls_client_cert", "This certificate expired on "),
        ("not yet valid", "tls_client_cert", "This certificate is valid only from "),
        ("other key", "tls_client_key", "This key does not match the certificate."),
        ("malformed certificate", "tls_client_cert", "Not a certificate"),
        ("malformed key", "tls_client_key", "Not a private key"),
        ("no key", "tls_client_key", "Paste the certificate's private key"),
        ("malformed bundle", "tls_ca_bundle", "Not a CA bundle"),
    ],
)
def test_a_certificate_that_cannot_work_is_refused_when_saved(client, vendor, client_ca, change, field, message):
    now = datetime.now(UTC)
    cert, key = pem_pair(client_ca, "orders")
    values = {"tls_client_cert": cert, "tls_client_key": key}
    if change == "expired":
        values["tls_client_cert"], values["tls_client_key"] = pem_pair(
            client_ca, "old", not_before=now - timedelta(days=60), not_after=now - timedelta(days=1)
        )
    elif change == "not yet valid":
        values["tls_client_cert"], values["tls_client_key"] = pem_pair(
            client_ca, "new", not_before=now + timedelta(days=1), not_after=now + timedelta(days=60)
        )
    elif change == "other key":
        values["tls_client_key"] = pem_pair(client_ca, "other")[1]
    elif change == "malformed certificate":
        values["tls_client_cert"] = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    elif change == "malformed key":
        values["tls_client_key"] = "hello"
    elif change == "no key":
        del values["tls_client_key"]
    else:
        values["tls_ca_bundle"] = "a bundle"
    answer = api(client, api_token(vendor.account), "POST", product_id=vendor.products[0].id, type="event",
                 object_class="fulfillment_request", label="Mutual", external_url="https://handler.example.com/hook",
                 http_method="POST", **values)  # fmt: skip
    assert answer.status_code == 400
    errors = answer.get_json()["errors"]
    assert any(error.startswith(f"{field}: {message}") for error in errors), errors
    assert all(key.splitlines()[1] not in error for error in errors)  # nothing of the key is quoted
    assert db.session.scalar(db.select(db.func.count()).select_from(Webhook)) == 0


def test_the_edit_page_refuses_an_expired_certificate_next_to_its_field(client, auth, vendor, client_ca):
    now = datetime.now(UTC)
    cert, key = pem_pair(client_ca, "old", not_before=now - timedelta(days=60), not_after=now - timedelta(days=1))
    hook = make_webhook(vendor)
    auth.login()
    form = edit_form(hook, action="save", tls_client_cert=cert, tls_client_key=key, tls_ca_bundle="")
    response = client.post(f"/webhooks/{hook.id}/edit", data=form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    field = page.split('id="tls_client_cert"', 1)[1].split("</div>", 1)[0]
    assert "This certificate expired on" in field
    assert key.splitlines()[1] not in page  # the key typed is not sent back
    db.session.expire_all()
    assert db.session.get(Webhook, hook.id).tls_client_cert is None


def test_the_edit_page_saves_a_certificate_and_send_test_presents_it(client, auth, vendor, mtls_handler,
                                                                      server_ca, client_ca):  # fmt: skip
    cert, key = pem_pair(client_ca, "edited")
    ca = server_ca.cert_pem.bytes().decode()
    hook = make_webhook(vendor, external_url=mtls_handler.https_url + "/edit")
    auth.login()
    fields = {"external_url": hook.external_url, "tls_client_cert": cert, "tls_client_key": key, "tls_ca_bundle": ca}
    box = result_box(text(client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, **fields))))
    assert "HTTP 200" in box and subject(mtls_handler.wait_for("/edit")[0]) == "edited"

    saved = client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, action="save", **fields))
    assert saved.status_code == 302
    page = client.get(f"/webhooks/{hook.id}/edit").get_data(as_text=True)
    assert cert.splitlines()[1] in page and key.splitlines()[1] not in page and "stored: leave empty to keep it" in page
    # Saved again with the key left empty: the stored key stays, and a test still presents it.
    kept = {**fields, "tls_client_key": ""}
    box = result_box(text(client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook, **kept))))
    assert "HTTP 200" in box and len(mtls_handler.wait_for("/edit", 2)) == 2
    db.session.expire_all()
    assert db.session.get(Webhook, hook.id).tls_client_key == key.strip()


def test_signing_reads_the_snapshot_certificate(app, vendor, client_ca):
    cert, key = pem_pair(client_ca, "orders")
    hook = make_webhook(vendor, tls_client_cert=cert, tls_client_key=key)
    call = signing.build_call(snapshot(db.session.get(Webhook, hook.id)), triggered_at=datetime.now(UTC), api_url=None)
    assert call.client_tls is not None and call.client_tls.key_pem == key.strip()
    assert "PRIVATE" not in repr(call.client_tls) and "PRIVATE" not in repr(call)


def test_the_wizard_keeps_the_key_encrypted_and_creates_the_webhook_with_it(client, auth, vendor, client_ca):
    cert, key = pem_pair(client_ca, "wizard")
    auth.login()
    wizard = Wizard(client, vendor.products[0].id)
    wizard.complete("general", "product", "type")
    expired = pem_pair(client_ca, "old", not_before=datetime.now(UTC) - timedelta(days=9),
                       not_after=datetime.now(UTC) - timedelta(days=1))  # fmt: skip
    refused = wizard.post("http", tls_client_cert=expired[0], tls_client_key=expired[1])
    assert refused.status_code != 302 and "This certificate expired on" in text(refused)

    wizard.values["http"] |= {"tls_client_cert": cert, "tls_client_key": key}
    wizard.complete("http")
    draft = wizard.draft()
    assert key.splitlines()[1] not in str(draft.stored_data)  # encrypted in the draft
    assert draft.stored_data["tls_client_key_encrypted"].startswith("enc1:")
    page = text(wizard.get("http"))
    assert key.splitlines()[1] not in page and "stored: leave empty to keep it" in page
    # Back on the step with the key field left empty: the key typed before is kept.
    wizard.values["http"]["tls_client_key"] = ""
    wizard.complete("http", "data")
    [webhook] = db.session.query(Webhook).all()
    assert (webhook.tls_client_cert, webhook.tls_client_key) == (cert.strip(), key.strip())


def test_the_http_settings_tab_names_the_certificate_never_the_key(client, auth, vendor, client_ca):
    cert, key = pem_pair(client_ca, "orders")
    hook = make_webhook(vendor, tls_client_cert=cert, tls_client_key=key)
    auth.login()
    page = text(client.get(f"/webhooks/{hook.id}?tab=http"))
    assert "CN=orders" in page and "expires" in page and key.splitlines()[1] not in page
