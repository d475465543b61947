"""``POST /public/v1/events`` (DESIGN §7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug import Response

from ..services import events, tokens

blueprint = Blueprint("api", __name__, url_prefix="/public/v1")


def api_error(status: int, error_code: str, *errors: str) -> tuple[Response, int]:
    """The Connect-style error body: ``{"error_code": ..., "errors": [...]}``."""
    return jsonify(error_code=error_code, errors=list(errors)), status


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate ``Authorization: ApiKey <token>`` or ``Bearer <token>``; 401 otherwise."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = tokens.authenticate_header(request.headers.get("Authorization"))
        if token is None:
            response, status = api_error(
                401, "AUTH_001", "A valid API token is required (Authorization: ApiKey <token>)."
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="webhookapp"'
            return response, status
        g.api_token = token
        return view(*args, **kwargs)

    return wrapped


def json_body(max_bytes: int) -> Any:
    """The request's JSON, or an :class:`events.IngestError` for 413, 415 and malformed JSON."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise events.IngestError(413, "REQ_413", [f"The body must be at most {max_bytes // 1024} KiB."])
    if not request.is_json:
        raise events.IngestError(415, "REQ_415", ["Send JSON with Content-Type: application/json."])
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise events.IngestError(413, "REQ_413", [f"The body must be at most {max_bytes // 1024} KiB."])
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise events.IngestError(400, "REQ_400", [f"The body is not valid JSON: {exc}"]) from None
    except RecursionError:
        raise events.IngestError(400, "REQ_400", ["The body is nested too deeply."]) from None


@blueprint.post("/events")
@token_required
def post_event() -> tuple[Response, int]:
    try:
        body = json_body(current_app.config["EVENT_MAX_BYTES"])
        result = events.ingest(g.api_token, body)
    except events.IngestError as exc:
        return api_error(exc.status, exc.error_code, *exc.errors)
    return jsonify(result.as_json()), 200 if result.duplicate else 202
