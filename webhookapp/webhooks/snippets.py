"""Handler code for one webhook (the details page's Handler code tab): a complete minimal
handler in Python (Flask + PyJWT) and in Node.js (Express + jsonwebtoken), written for the
delivery contract (docs/architecture.md, "Delivery contract") and this webhook's method, path and
type; for a webhook signed the Standard Webhooks way (docs/architecture.md, "Signature formats"),
the same handlers verify with the specification's own libraries (``standardwebhooks`` on PyPI and
npm) instead. Each listens where the webhook calls: its run line and its defaults take the host, port and
path from the endpoint URL. The test suite runs both, as their run lines say, against real
deliveries.

The templates (``templates/webhooks/snippets/``) are plain text, not HTML; every value taken from
the webhook reaches them as a JSON string literal (ASCII only), which reads the same in Python
and JavaScript and cannot end a comment or a string early. The page escapes the result.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import render_template

from webhookapp.models import Webhook

SECRET_ENV = "WEBHOOK_SECRET"
FALLBACK_PATH = "/webhook"
# Paths that Flask's and Express's route syntax both take literally (no <converter>, :param,
# *, ?, parentheses or percent-escapes, which the two would match differently).
LITERAL_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")
EVERY_INTERFACE = "0.0.0.0"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Listen:
    """Where a handler for an endpoint URL listens: ``host`` is the URL's own when it names this
    machine (loopback), else every interface (``public``); ``https`` when the URL is, for the
    handler itself speaks plain HTTP."""

    host: str
    port: int
    public: bool
    https: bool
    url_host: str


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    filename: str
    code: str


def literal(value: str) -> str:
    """``value`` as a double-quoted string literal valid in Python and JavaScript alike."""
    return json.dumps(value, ensure_ascii=True)


def route_path(url: str) -> str | None:
    """The endpoint URL's path as a route both frameworks take literally, or None."""
    try:
        path = urlsplit(url).path or "/"
    except ValueError:
        return None
    return path if LITERAL_PATH.fullmatch(path) else None


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_on(url: str) -> Listen:
    """Where the handler for ``url`` listens: its port (80 or 443 when it names none) and, for a
    loopback host, that host; any other host is reached from elsewhere, so every interface."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = urlsplit(""), None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    port = port or DEFAULT_PORTS.get(scheme, 80)
    if _loopback(host):
        return Listen(host, port, public=False, https=scheme == "https", url_host=host)
    return Listen(EVERY_INTERFACE, port, public=True, https=scheme == "https", url_host=host)


def render(webhook: Webhook) -> list[Snippet]:
    """Both handlers for ``webhook``: Python first, then Node.js."""
    entry = webhook.catalog_entry
    validation = entry.kind == "validation"
    path = route_path(webhook.external_url)
    listen = listen_on(webhook.external_url)
    context = {
        "webhook_id": webhook.id,
        "label": literal(webhook.label),
        "url": literal(webhook.external_url),
        # Validation calls are always POSTed (docs/architecture.md, "Validations").
        "method": "POST" if validation else webhook.http_method,
        "validation": validation,
        "path": literal(path or FALLBACK_PATH),
        "path_is_guessed": path is None,
        "object_class": entry.object_class,
        "secret_env": SECRET_ENV,
        "listen": listen,
        "host": literal(listen.host),
        "url_host": literal(listen.url_host),
    }
    if webhook.signature_format == "standard":
        return [
            Snippet("python", "Python (Flask + standardwebhooks)", "handler.py",
                    _text("standard_handler.py.j2", context)),
            Snippet("node", "Node.js (Express + standardwebhooks)", "handler.js",
                    _text("standard_handler.js.j2", context)),
        ]  # fmt: skip
    return [
        Snippet("python", "Python (Flask + PyJWT)", "handler.py", _text("handler.py.j2", context)),
        Snippet("node", "Node.js (Express + jsonwebtoken)", "handler.js", _text("handler.js.j2", context)),
    ]


def _text(template: str, context: dict[str, object]) -> str:
    return render_template(f"webhooks/snippets/{template}", **context).strip() + "\n"
