"""Split a py-spy profile (``--format raw``: collapsed stacks) by stage of the delivery or the
event API, for ``python -m bench.profile summary``.

Each stack goes to the first stage of :data:`STAGES` that one of its frames names, then, within
the stage, to the library of its innermost frame. With ``--gil`` sampling a sample is 1/rate
seconds of Python holding the interpreter: the ms per delivery or event are the samples' time
divided by ``--per``; sampling slows the process, so the shares are what to read.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

STAGES: list[tuple[str, tuple[str, ...]]] = [
    # The delivery worker
    ("claim (SQL)", ("claim_due (",)),
    ("sign JWT, build call", ("build_call (webhookapp/engine/",)),
    ("send: prepare request", ("PreparedRequest.prepare (",)),
    ("send: parse response headers", ("parse_headers (http/client",)),
    ("send: read body", ("_read_capped (",)),
    ("send: other (urllib3, http.client, result)", ("Sender.send (",)),
    ("record (SQL)", ("record (webhookapp/engine/delivery/recording", "record_patiently (")),
    ("linger: doorbell, next due", ("_linger (",)),
    ("lease reclaim", ("reclaim_expired (",)),
    ("sweeper, cron, recoveries", ("sweep (webhookapp", "run_cron (", "run_recoveries (")),
    ("delivery loop, threads", ("drain (webhookapp", "Flight.")),
    # The event API
    ("token digest", ("presented_digest (",)),
    ("validation", ("validate (webhookapp/engine/ingest",)),
    ("ingest statement", ("_run (webhookapp/engine/ingest",)),
    ("group commit, other", ("GroupCommit.store (",)),
    ("wake (Redis)", ("wake (webhookapp/engine/dispatch",)),
    ("answer JSON", ("jsonify (",)),
    ("JSON body", ("json_body (", "Request.get_json (", "Request.get_data (", "loads (json/__init__")),
    ("metrics", ("webhookapp/infra/metrics",)),
    ("view, other", ("post_event (", "bare_app")),
    ("Flask: before-request hooks", ("Flask.preprocess_request (",)),
    ("Flask: after-request hooks, session", ("Flask.process_response (",)),
    ("Flask: teardown", ("Flask.do_teardown_",)),
    ("Flask, Werkzeug: other", ("flask/", "werkzeug/")),
    ("gunicorn: HTTP parsing", ("Parser.__next__ (gunicorn",)),
    ("gunicorn: loop, sockets", ("gunicorn/",)),
    # Either
    ("RQ", ("rq/",)),
]

LIBRARIES = [
    ("psycopg", "psycopg"), ("sqlalchemy", "sqlalchemy/"), ("requests", "requests/"), ("urllib3", "urllib3/"),
    ("http.client", "http/client.py"), ("socket, ssl", "socket.py"), ("jwt", "jwt/"), ("json", "json/"),
    ("hashing", "hmac.py"), ("threads, queues", "threading.py"), ("threads, queues", "queue.py"),
    ("threads, queues", "concurrent/"), ("logging", "logging/"), ("redis", "redis/"), ("rq", "rq/"),
    ("flask", "flask/"), ("werkzeug", "werkzeug/"), ("gunicorn", "gunicorn/"), ("selectors", "selectors.py"),
    ("email headers", "email/"), ("prometheus", "prometheus_client/"), ("webhookapp", "webhookapp/"),
]  # fmt: skip
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):\d+\)$")


def stacks(path: Path) -> Counter[tuple[str, ...]]:
    """The profile's stacks and their sample counts (a process name may span lines)."""
    counts: Counter[tuple[str, ...]] = Counter()
    pending = ""
    for line in path.read_text(errors="replace").splitlines():
        pending += line
        match = re.search(r" (\d+)$", pending)
        if match is None:
            pending += " "
            continue
        frames = tuple(f for f in pending[: match.start()].split(";") if not f.startswith("process "))
        counts[frames] += int(match.group(1))
        pending = ""
    return counts


def stage(frames: tuple[str, ...]) -> str:
    for name, markers in STAGES:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return "other"


def library(frames: tuple[str, ...]) -> str:
    if not frames:
        return "?"
    match = FRAME.match(frames[-1])
    where = match.group("file") if match else frames[-1]
    for name, marker in LIBRARIES:
        if marker in where:
            return name
    return f"other ({where.rsplit('/', 1)[-1]})"


def summarise(path: Path, per: int, rate: int) -> None:
    counts = stacks(path)
    total = sum(counts.values())
    by_stage: Counter[str] = Counter()
    inner: dict[str, Counter[str]] = defaultdict(Counter)
    for frames, count in counts.items():
        name = stage(frames)
        by_stage[name] += count
        inner[name][library(frames)] += count
    ms = 1000 / rate / per
    print(f"{path}: {total} samples at {rate}/s = {total / rate:.2f} s of Python, {total * ms:.3f} ms per one of {per}")
    for name, count in by_stage.most_common():
        libraries = ", ".join(f"{lib} {n / count:.0%}" for lib, n in inner[name].most_common(4))
        print(f"  {name:<28} {count * ms:7.3f} ms {count / total:6.1%}   [{libraries}]")
