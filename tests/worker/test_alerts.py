"""Alerts (docs/architecture.md, "Alerts"): one message to the account's users when a webhook goes
Out of order and one when it recovers, through a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import email
import logging
import time
from collections.abc import Iterator
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker, start_worker, stop
from tests.servers import free_port
from webhookapp.engine import maintenance
from webhookapp.engine.maintenance import alerts
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import accounts
from webhookapp.services import webhook_changes as service


class Inbox:
    """What the SMTP server received: each message with its envelope's recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd calls it by this name
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 15) -> list[tuple[list[str], Message]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.messages) >= count, f"{len(self.messages)} of {count} messages after {timeout}s"
        return self.messages


@pytest.fixture
def inbox(app) -> Iterator[Inbox]:
    received = Inbox()
    controller = Controller(received, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, WEBHOOK_SITE_URL="https://hooks.example/")
    yield received
    controller.stop()


@pytest.fixture
def fast_retries(app):
    app.config.update(
        WEBHOOK_RETRY_BASE=0.05, WEBHOOK_RETRY_FACTOR=1, WEBHOOK_RETRY_MAX_INTERVAL=1, WEBHOOK_MAX_ATTEMPTS=3
    )


def stored(webhook_id: str) -> Webhook:
    db.session.expire_all()
    return db.session.get(Webhook, webhook_id)


def body(message: Message) -> str:
    return message.get_payload(decode=True).decode().replace("\r\n", "\n")


def test_out_of_order_and_recovery_each_send_one_message(app, client, vendor, other_vendor, handler, inbox,
                                                         fast_retries):  # fmt: skip
    colleague = accounts.create_user(vendor.account.id, "bob@acme.test", "another password 123", name="Bob")
    make_webhook(other_vendor)  # another account's users hear nothing
    url = handler.behave("/erp", status=503, body=b"maintenance")
    hook = make_webhook(vendor, label="Orders to ERP", external_url=url)
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id)
    run_worker(app)
    assert stored(hook.id).out_of_order is True

    assert alerts.send_alerts() == 1
    assert alerts.send_alerts() == 0  # one message per change of state
    [(recipients, message)] = inbox.messages
    assert sorted(recipients) == sorted([vendor.email, colleague.email])
    assert message["Subject"] == f"Webhook out of order: Orders to ERP ({hook.id})"
    text = body(message)
    assert "its last 3 attempts failed" in text and "got HTTP 503" in text
    attempt_id = stored(hook.id).last_failure_info["attempt_id"]
    assert f"https://hooks.example/webhooks/{hook.id}/attempts/{attempt_id}" in text
    assert f"https://hooks.example/webhooks/{hook.id}\n" in text and "Retry now" in text

    handler.behave("/erp", status=200)
    service.retry_now(stored(hook.id))
    run_worker(app)
    assert stored(hook.id).status == "Enabled"
    assert alerts.send_alerts() == 1
    assert alerts.send_alerts() == 0
    recipients, recovered = inbox.messages[1]
    assert recovered["Subject"] == f"Webhook recovered: Orders to ERP ({hook.id})"
    assert "delivers again: the handler answered HTTP 200" in body(recovered)
    assert len(inbox.messages) == 2


def test_enable_alone_is_not_a_recovery(app, vendor, inbox):
    hook = make_webhook(vendor)
    row = stored(hook.id)
    row.out_of_order, row.failures_since_last_success = True, 10
    db.session.commit()
    assert alerts.send_alerts() == 1
    service.set_enabled(stored(hook.id), True)  # Enable: no longer out of order, not delivering yet
    assert stored(hook.id).out_of_order is False
    assert alerts.send_alerts() == 0 and len(inbox.messages) == 1
    assert stored(hook.id).alerted_out_of_order is True  # told once it delivers again


def test_a_mail_server_that_is_down_delays_the_message(app, vendor, inbox, caplog):
    hook = make_webhook(vendor)
    stored(hook.id).out_of_order = True
    db.session.commit()
    working_port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="webhookapp.engine.maintenance.alerts"):
        assert alerts.send_alerts() == 0
    assert f"Could not send the alert for {hook.id}" in caplog.text
    assert stored(hook.id).alerted_out_of_order is False
    app.config["MAIL_PORT"] = working_port
    assert alerts.send_alerts() == 1 and len(inbox.messages) == 1


def test_without_a_mail_server_the_message_is_logged(app, vendor, caplog):
    app.config["MAIL_SERVER"] = ""
    hook = make_webhook(vendor, label="Logged hook")
    stored(hook.id).out_of_order = True
    db.session.commit()
    with caplog.at_level(logging.WARNING, logger="webhookapp.infra.mail"):
        assert alerts.send_alerts() == 1
    assert f"Webhook out of order: Logged hook ({hook.id})" in caplog.text and vendor.email in caplog.text


def test_one_worker_scans_at_a_time(app, vendor, inbox):
    hook = make_webhook(vendor)
    stored(hook.id).out_of_order = True
    db.session.commit()
    holder = maintenance.take_lease(alerts.LEASE)  # another worker is scanning
    assert alerts.send_alerts() == 0 and inbox.messages == []
    maintenance.release_lease(alerts.LEASE, holder)
    assert alerts.send_alerts() == 1


def test_a_running_worker_sends_alerts_on_its_own(app, vendor, inbox):
    hook = make_webhook(vendor, label="Watched")
    stored(hook.id).out_of_order = True
    db.session.commit()
    worker = start_worker(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=app.config["MAIL_PORT"], WEBHOOK_ALERT_INTERVAL=1)
    try:
        [(_recipients, message)] = inbox.wait_for(1)
        deadline = time.monotonic() + 10
        while not stored(hook.id).alerted_out_of_order and time.monotonic() < deadline:
            time.sleep(0.05)  # marked just after the server took the message
    finally:
        stop(worker)
    assert message["Subject"] == f"Webhook out of order: Watched ({hook.id})"
    assert stored(hook.id).alerted_out_of_order is True
