"""The web side's rules: webhooks, wizard drafts, accounts and tokens (docs/architecture.md, "Layers").

Blueprints and the command line call these; they own transactions. Trigger state changes go
through the engine (``webhookapp.engine.triggers``), never around it.
"""
