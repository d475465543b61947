"""Messages to people: by SMTP when ``MAIL_SERVER`` is set, otherwise written to the log (so that a
development machine or a test sees them without a mail server)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger(__name__)

MailError = (OSError, smtplib.SMTPException)
"""What :func:`send` raises when the server cannot be reached or refuses the message."""


def send(recipients: list[str], subject: str, body: str) -> None:
    """Send one plain-text message to ``recipients`` (one message, all of them in To)."""
    config = current_app.config
    if not config["MAIL_SERVER"]:
        log.warning("Mail to %s (no MAIL_SERVER set, so logged here): %s\n%s", ", ".join(recipients), subject, body)
        return
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    connect = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
    with connect(config["MAIL_SERVER"], int(config["MAIL_PORT"]), timeout=float(config["MAIL_TIMEOUT"])) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(message)
