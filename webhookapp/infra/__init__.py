"""Infrastructure (docs/architecture.md, "Layers"): configuration, the Flask extensions, logs,
metrics, mail, throttling, paging and template helpers."""
