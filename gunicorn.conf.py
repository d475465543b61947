"""gunicorn's settings for webhookapp, read from the working directory by default
(``gunicorn wsgi:app``; elsewhere ``gunicorn -c /path/to/gunicorn.conf.py wsgi:app``).

Command-line options still win; this file only adds what the service needs of gunicorn itself:
JSON lines for gunicorn's own logs when ``LOG_FORMAT=json``, and the ``child_exit`` hook that
Prometheus's multi-process mode asks for (README, "Metrics").
"""

import os

if os.environ.get("LOG_FORMAT") == "json":
    # gunicorn's own lines (start, worker boots and exits, access) as JSON objects too. The root
    # logger is left without handlers: the app factory gives it the JSON one (webhookapp/logs.py).
    logconfig_dict = {
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            name: {"level": "INFO", "handlers": ["json"], "propagate": False, "qualname": name}
            for name in ("gunicorn.error", "gunicorn.access")
        },
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": "webhookapp.infra.logs.JsonFormatter"}},
    }


def child_exit(server: object, worker: object) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, drop a dead worker's live gauges from /metrics (its
    counters are kept: they only ever add up)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
