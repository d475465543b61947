"""The release number: sent as ``User-Agent: webhookapp/<version>`` and shown in the API document."""

__version__ = "0.3.0"
