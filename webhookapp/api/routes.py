"""The /public/v1 blueprint: token authentication, JSON bodies and errors, and the event endpoint."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug import Response

from ..services import events, tokens

blueprint = Blueprint("api", __name__, url_prefix="/public/v1")

BODY_MAX_BYTES = 64 * 1024


class ApiError(Exception):
    """Refused input: rendered as ``{"error_code": ..., "errors": [...]}`` with ``status``."""

    def __init__(self, status: int, error_code: str, *errors: str):
        super().__init__(f"{status} {error_code}: {' '.join(errors)}")
        self.status = status
        self.error_code = error_code
        self.errors = list(errors)


@blueprint.errorhandler(ApiError)
def render_api_error(error: ApiError) -> tuple[Response, int]:
    return jsonify(error_code=error.error_code, errors=error.errors), error.status


def unauthorized() -> tuple[Response, int]:
    response = jsonify(error_code="AUTH_001", errors=["A valid API token is required (Authorization: ApiKey <token>)."])
    response.headers["WWW-Authenticate"] = 'Bearer realm="webhookapp"'
    return response, 401


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate ``Authorization: ApiKey <token>`` or ``Bearer <token>``; 401 otherwise."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = tokens.authenticate_header(request.headers.get("Authorization"))
        if token is None:
            return unauthorized()
        g.api_token = token
        return view(*args, **kwargs)

    return wrapped


def json_body(max_bytes: int = BODY_MAX_BYTES) -> Any:
    """The request's JSON, or an ApiError: 413 too large, 415 not JSON, 400 malformed."""
    too_large = ApiError(413, "REQ_413", f"The body must be at most {max_bytes // 1024} KiB.")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    if not request.is_json:
        raise ApiError(415, "REQ_415", "Send JSON with Content-Type: application/json.")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "REQ_400", f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "REQ_400", "The body is nested too deeply.") from None


def _not_json(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    """Python reads NaN, Infinity and 1e400 as numbers; JSON has no such values."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


@blueprint.post("/events")
def post_event() -> tuple[Response, int]:
    """Accept a queue-change event (DESIGN §7); the token is checked as the event is stored."""
    authorization = request.headers.get("Authorization")
    try:
        result = events.ingest_as(authorization, json_body(current_app.config["EVENT_MAX_BYTES"]))
    except events.Unauthenticated:
        return unauthorized()
    except (ApiError, events.IngestError) as exc:
        # Refused input is explained to an authenticated caller only; anyone else gets a 401.
        if tokens.authenticate_header(authorization) is None:
            return unauthorized()
        if isinstance(exc, events.IngestError):
            raise ApiError(exc.status, exc.error_code, *exc.errors) from None
        raise
    return jsonify(result.as_json()), 200 if result.duplicate else 202
