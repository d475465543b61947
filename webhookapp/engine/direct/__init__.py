"""Calls made at once, outside the trigger state (docs/architecture.md, "Layers"): validation
webhooks, Send test request and Redeliver."""
