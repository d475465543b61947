"""Domain rules every layer uses (docs/architecture.md, "Layers"): the catalog of webhook types,
the field rules, errors, ids and times. It imports nothing of the application."""
