"""The least a webhook service can do per event, as a WSGI app, for ``bench.floor``.

``gunicorn bench.floor_app:app`` or ``flask --app bench.floor_app run --with-threads``, with
``FLOOR_DATABASE_URL`` (a psycopg URL) and ``FLOOR_HANDLER_URL`` set. No token, no validation,
no matching, no Redis, no worker:

* ``POST /store`` parses the JSON body as the bare endpoint does (``bench.bare_app``), stores it
  durably (one prepared ``INSERT`` in autocommit on a pooled connection: one round trip,
  and the answer waits for the commit's WAL flush, as an accepted event must), and answers 202.
* ``POST /store-and-send`` does the same, then signs a delivery (``signing.build_payload`` and
  ``signing.sign``, what every attempt costs) and POSTs it to the handler on a pooled keep-alive
  session, before it answers: an event's first attempt with nothing between the commit
  and the send.
"""

from __future__ import annotations

import json
import os
import queue
from datetime import UTC, datetime
from typing import Any

import psycopg
import requests
from flask import Flask, jsonify, request

from webhookapp.engine import signing
from webhookapp.engine.types import WebhookSnapshot

TABLE = "bench_floor_events"
INSERT = f"INSERT INTO {TABLE} (body) VALUES (%s)"
SECRET = "floor-benchmark-secret-of-32-bytes"
PROCESSING_TIMEOUT = 5.0
WEBHOOK = WebhookSnapshot(
    id="WH-000-000-000", label="Floor", object_class="fulfillment_request", account_id="VA-000-000",
    product_id="PRD-000-000-000", http_method="POST", external_url="", jwt_secret_encrypted=None,
    headers={}, data={}, last_success_at=None, last_failure_at=None,
)  # fmt: skip

app = Flask(__name__)
# Pools, not one per thread: the development server starts a thread per request.
_connections: queue.SimpleQueue[psycopg.Connection] = queue.SimpleQueue()
_sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()


def store(body: bytes) -> None:
    """One durable INSERT of ``body``: autocommit, prepared, on a pooled connection."""
    try:
        connection = _connections.get_nowait()
    except queue.Empty:
        connection = psycopg.connect(os.environ["FLOOR_DATABASE_URL"], autocommit=True)
    try:
        connection.execute(INSERT, (body.decode(),), prepare=True)
    finally:
        _connections.put(connection)


def send(session: requests.Session, url: str) -> bool:
    """Sign one delivery of :data:`WEBHOOK` and POST it to ``url``; True on a 2xx answer."""
    now = datetime.now(UTC)
    payload = signing.build_payload(WEBHOOK, triggered_at=now, api_url="", processing_timeout=PROCESSING_TIMEOUT)
    token = signing.sign(payload, SECRET, triggered_at=now, processing_timeout=PROCESSING_TIMEOUT)
    response = session.post(
        url,
        data=json.dumps(payload, separators=(",", ":")).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
        allow_redirects=False,
    )
    response.content  # noqa: B018 - read the body, as the engine does
    return 200 <= response.status_code < 300


def _parsed() -> tuple[Any, Any]:
    """The JSON object posted, or an error answer (as ``bench.bare_app``)."""
    try:
        body = json.loads(request.get_data())
    except ValueError:
        return None, (jsonify(error_code="REQ_400", errors=["The body is not valid JSON."]), 400)
    if not isinstance(body, dict):
        return None, (jsonify(error_code="VAL_001", errors=["The body must be a JSON object."]), 400)
    return body, None


@app.post("/store")
def post_store():
    _, error = _parsed()
    if error:
        return error
    store(request.get_data())
    return jsonify(id="EV-0000-0000-0000-0000", webhooks=[], duplicate=False), 202


@app.post("/store-and-send")
def post_store_and_send():
    stored = post_store()
    if stored[1] != 202:
        return stored
    try:
        session = _sessions.get_nowait()
    except queue.Empty:
        session = requests.Session()
        session.trust_env = False
    try:
        sent = send(session, os.environ["FLOOR_HANDLER_URL"])
    finally:
        _sessions.put(session)
    return jsonify(id="EV-0000-0000-0000-0000", webhooks=[], duplicate=False, sent=sent), 202
