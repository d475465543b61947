"""``/healthz``, ``/readyz`` and ``/metrics`` (docs/architecture.md, "Operations")."""

from __future__ import annotations

from flask import abort, current_app, jsonify
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from werkzeug import Response

from webhookapp.ops import access, health
from webhookapp.ops.blueprint import blueprint
from webhookapp.ops.state import StateCollector


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process answers: nothing else is asked, so a busy database cannot fail it."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """The database and Redis answer within a second each; 503 naming the one that did not.
    Through Sentinels, ``redis_master`` names the master that answered."""
    results = health.readiness()
    ready = all(results[name] == health.OK for name in health.CHECKS)
    return jsonify(results), 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus's text format: the counters of every process of this machine (those of
    ``PROMETHEUS_MULTIPROC_DIR``, else this process's own), then the state read now.

    Anyone outside ``WEBHOOK_METRICS_NETWORKS`` without an operator's token gets a 404: the
    endpoint does not say that it exists."""
    if not access.may_read_metrics():
        abort(404)
    directory = current_app.config["PROMETHEUS_MULTIPROC_DIR"]
    if directory:
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters, path=directory)
    else:
        counters = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    return Response(generate_latest(counters) + generate_latest(state), content_type=CONTENT_TYPE_PLAIN_0_0_4)
