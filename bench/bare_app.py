"""The baseline for ``bench.ingest``: a bare Flask app with one JSON POST endpoint.

``gunicorn bench.bare_app:app``. It parses the body like the real endpoint does and answers 202
with a small JSON document, with no token, database or Redis: what Flask and the server cost.
"""

from __future__ import annotations

import json

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/events")
def post_event():
    try:
        body = json.loads(request.get_data())
    except ValueError:
        return jsonify(error_code="REQ_400", errors=["The body is not valid JSON."]), 400
    if not isinstance(body, dict):
        return jsonify(error_code="VAL_001", errors=["The body must be a JSON object."]), 400
    return jsonify(id="EV-0000-0000-0000-0000", webhooks=[], duplicate=False), 202
