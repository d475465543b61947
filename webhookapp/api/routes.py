"""The /public/v1 blueprint: token authentication, JSON bodies, errors, and the event endpoint.

Every refused request, whatever raised it, is rendered here by :func:`render_service_error`
(docs/architecture.md, "Errors"); the views raise, never format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug import Response

from webhookapp.api import callbacks
from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError, Unauthenticated
from webhookapp.engine import ingest, runtime, tracing
from webhookapp.engine.ingest.postgresql import GroupCommit
from webhookapp.infra import metrics, throttling
from webhookapp.models import tenancy

blueprint = Blueprint("api", __name__, url_prefix="/public/v1")

BODY_MAX_BYTES = 64 * 1024


@blueprint.errorhandler(ServiceError)
def render_service_error(error: ServiceError) -> tuple[Response, int]:
    if isinstance(error, Unauthenticated) and request.headers.get("Authorization"):
        try:
            throttling.token_failed()  # a token was presented and failed: count it
        except throttling.TooManyFailures as throttled:
            error = throttled
    response = jsonify(error.as_json())
    response.headers.update(error.headers)
    return response, error.status


def token_required(scope: str, *also: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authenticate ``Authorization: ApiKey <token>`` or ``Bearer <token>`` with ``scope`` (and
    every scope of ``also``): 401 without a valid, unexpired token (a delivery JWT too: it opens
    the events alone, see :mod:`webhookapp.api.callbacks`), 403 naming the scope it lacks
    (docs/security.md, "Scoped and expiring API tokens"). Every API route names its scopes:
    ``@token_required(scopes.AUDIT_READ)``."""
    if not isinstance(scope, str) or any(not isinstance(name, str) for name in also):
        raise TypeError("token_required needs the scope the route requires: @token_required(scopes.WEBHOOKS_READ)")
    needed = (scope, *also)
    unknown = [name for name in needed if name not in scopes.SCOPES]
    if unknown:
        raise ValueError(f"Unknown scope {unknown[0]!r}: add it to core.scopes.SCOPES first.")

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization")
            if callbacks.presented_jwt(header):
                raise Unauthenticated(callbacks.ONLY_EVENTS)
            g.api_token = tenancy.authorize(header, scope, request.remote_addr, also=also)
            return view(*args, **kwargs)

        wrapped.required_scopes = needed  # type: ignore[attr-defined]  # for the OpenAPI document and tests
        return wrapped

    return decorate


def json_body(max_bytes: int = BODY_MAX_BYTES) -> Any:
    """The request's JSON, or a ServiceError: 413 too large, 415 not JSON, 400 malformed."""
    too_large = ServiceError(413, "REQ_413", f"The body must be at most {max_bytes // 1024} KiB.")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    if not request.is_json:
        raise ServiceError(415, "REQ_415", "Send JSON with Content-Type: application/json.")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(400, "REQ_400", f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ServiceError(400, "REQ_400", "The body is nested too deeply.") from None


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
    """Accept a queue-change event; the token (with ``events:write``) is checked as the event is stored."""
    try:
        result = _ingest_event(request.headers.get("Authorization"))
    except ServiceError as error:
        metrics.event_refused(error.status)
        raise
    (metrics.DUPLICATE if result.duplicate else metrics.ACCEPTED).inc()
    return jsonify(result.as_json()), 200 if result.duplicate else 202


post_event.required_scopes = (scopes.EVENTS_WRITE,)  # type: ignore[attr-defined]  # checked by the ingest


def _ingest_event(authorization: str | None) -> ingest.IngestResult:
    made = runtime.current()
    tracer = made.tracer()
    if tracer is None:  # the hot path: no span, no trace context stored
        return _ingest_traced(authorization, made.group_commit, None)
    with tracing.serving(tracer, "POST /public/v1/events", request.headers) as span:
        assert span is not None
        result = _ingest_traced(authorization, made.group_commit, tracing.traceparent(span))
        span.set_attribute(tracing.EVENT_ID, result.event_id)
        span.set_attribute(tracing.WEBHOOK_ID, result.webhook_ids)
        return result


def _ingest_traced(authorization: str | None, groups: GroupCommit, traceparent: str | None) -> ingest.IngestResult:
    try:
        body = json_body(current_app.config["EVENT_MAX_BYTES"])
        return ingest.ingest_as(authorization, body, groups, address=request.remote_addr, traceparent=traceparent)
    except (Unauthenticated, scopes.InsufficientScope):
        raise
    except ServiceError:
        # Refused input is explained to an authorized caller only; anyone else gets a 401 or a 403.
        tenancy.authorize(authorization, scopes.EVENTS_WRITE, request.remote_addr)
        raise
