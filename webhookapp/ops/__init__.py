"""Endpoints for the people who run the service: health checks and Prometheus metrics
(docs/architecture.md, "Operations"). No login, no CSRF, no rate limits, never cached."""

from webhookapp.ops import routes  # noqa: F401 - importing it adds the routes to the blueprint
from webhookapp.ops.blueprint import blueprint

__all__ = ["blueprint"]
