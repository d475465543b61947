"""Business rules. Blueprints, the command line and workers call these; they own transactions."""
