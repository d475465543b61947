"""Send benchmark: the CPU one POST to a fast local handler costs, through each HTTP client.

    .venv/bin/python -m bench.send [--calls 4000] [--rounds 3]

Prints, per client, the CPU time (``time.process_time``: this process, all threads) and the wall
time of one call, medians of ``--rounds`` rounds of ``--calls`` calls each, the clients taking
turns within each round. The request is a delivery's size (a JSON body of about 600 bytes, a JWT
header of about 700), on one keep-alive connection, to ``bench.common.Handler`` (an asyncio
server in its own process, answering at once). No database, no Redis.

* engine: ``engine.transport.sender.Sender.send``, what a worker's send thread calls: the SSRF
  guard, the deadline watchdog, the capped read, the recorded headers and body.
* requests adapter: the same call made as the engine made it before 0.4 (a ``PreparedRequest``
  sent through a ``requests.adapters.HTTPAdapter``, read through its ``Response``), kept here to
  show what sending straight through urllib3 saved.
* requests Session: ``requests.Session.post`` and ``.content``, the plain loop of
  ``bench.delivery``.
* urllib3 pool: ``HTTPConnectionPool.urlopen`` and a read, the floor under the engine's client.
* http.client: ``HTTPConnection.request`` and ``getresponse().read()``, the standard library's.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from bench.common import Handler, print_table, run_main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per client and round (4000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (3)")
    return parser.parse_args(argv)


def clients(url: str) -> dict[str, Callable[[], object]]:
    """One call through each client, by name; each checks that the handler said 200."""
    from webhookapp.engine.transport.sender import Sender
    from webhookapp.engine.types import PreparedCall

    body = json.dumps({"webhook_id": "WH-000-000-001", "data": {"text": "x" * 500}}).encode()
    headers = {"User-Agent": "webhookapp/bench", "Authorization": "Bearer " + "a" * 700,
               "Content-Type": "application/json"}  # fmt: skip
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    sender = Sender(allowed_networks=["127.0.0.0/8"], timeout=10)
    call = PreparedCall(method="POST", url=url, headers=headers, body=body, logged_headers={})

    def engine() -> object:
        assert sender.send(call).success
        return None

    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)

    def requests_adapter() -> object:
        request = requests.models.PreparedRequest()
        request.prepare(method="POST", url=url, headers=headers, data=body)
        response = adapter.send(request, stream=True, timeout=(10, 10))
        response.raw.read1(8192, decode_content=True)
        response.raw.read1(8192, decode_content=True)
        response.close()
        assert response.status_code == 200
        return None

    session = requests.Session()

    def requests_session() -> object:
        response = session.post(url, data=body, headers=headers, timeout=10, allow_redirects=False)
        assert response.status_code == 200 and response.content
        return None

    pool = urllib3.HTTPConnectionPool(host, port, maxsize=1)
    timeout = urllib3.Timeout(connect=10, read=10)

    def urllib3_pool() -> object:
        response = pool.urlopen("POST", parts.path, body=body, headers=headers, redirect=False, retries=False,
                                timeout=timeout, preload_content=False)  # fmt: skip
        while response.read1(8192):
            pass
        response.release_conn()
        assert response.status == 200
        return None

    connection = http.client.HTTPConnection(host, port)

    def standard_library() -> object:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        return None

    return {
        "engine (Sender.send)": engine,
        "requests adapter": requests_adapter,
        "requests Session": requests_session,
        "urllib3 pool": urllib3_pool,
        "http.client": standard_library,
    }


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        handler = Handler(stack, capacity=16)
        calls = clients(handler.url + "/webhook")
        cpu: dict[str, list[float]] = {name: [] for name in calls}
        wall: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():  # connections opened, code warm
            for _ in range(50):
                call()
        for _ in range(args.rounds):
            for name, call in calls.items():
                cpu_start, wall_start = time.process_time(), time.perf_counter()
                for _ in range(args.calls):
                    call()
                cpu[name].append((time.process_time() - cpu_start) * 1000 / args.calls)
                wall[name].append((time.perf_counter() - wall_start) * 1000 / args.calls)
        engine = statistics.median(cpu["engine (Sender.send)"])
        rows = []
        for name in calls:
            per_call = statistics.median(cpu[name])
            rows.append([name, f"{per_call:.3f}", f"{statistics.median(wall[name]):.3f}", f"{per_call / engine:.2f}"])
        title = f"One POST to a fast local handler: {args.calls} calls × {args.rounds} rounds per client (ms per call)"
        print_table(title, ["client", "CPU", "wall", "CPU ÷ engine's"], rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
