"""Benchmarks: ``python -m bench.delivery`` (the delivery engine) and ``python -m bench.ingest`` (the event API)."""
