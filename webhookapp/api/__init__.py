"""The public JSON API under /public/v1: token-authenticated, CSRF-exempt, JSON errors."""

# Importing the view modules adds their routes to the blueprint.
from webhookapp.api import (  # noqa: F401
    audit_views,
    event_views,
    openapi,
    recovery_views,
    secret_rotation_views,
    validation_views,
    webhook_views,
)
from webhookapp.api.routes import blueprint

__all__ = ["blueprint"]
