"""``/healthz``, ``/readyz`` (docs/architecture.md, "Operations")."""

from __future__ import annotations

from flask import jsonify
from werkzeug import Response

from . import health
from .blueprint import blueprint


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process answers: nothing else is asked, so a busy database cannot fail it."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """The database and Redis answer within a second each; 503 naming the one that did not."""
    results = health.readiness()
    ready = all(state == health.OK for state in results.values())
    return jsonify(results), 200 if ready else 503
