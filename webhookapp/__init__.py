"""webhookapp: a self-hosted webhook service in the style of CloudBlue Connect's Webhooks module.

The application factory is :func:`webhookapp.app.create_app` (docs/architecture.md, "Layers").
"""

from webhookapp.app import create_app
from webhookapp.version import __version__

__all__ = ["__version__", "create_app"]
