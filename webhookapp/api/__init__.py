"""The public JSON API under /public/v1: token-authenticated, CSRF-exempt, JSON errors."""

from . import events, openapi, rotation, validations, webhooks  # noqa: F401 - importing them adds their routes to the blueprint
from .routes import blueprint

__all__ = ["blueprint"]
