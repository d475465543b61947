"""Endpoints for the people who run the service: health checks and Prometheus metrics
(docs/architecture.md, "Operations"). No login, no CSRF, no rate limits, never cached."""

from . import routes  # noqa: F401 - importing it adds the routes to the blueprint
from .blueprint import blueprint

__all__ = ["blueprint"]
