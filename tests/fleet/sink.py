"""The fleet's handlers (``python -m tests.fleet.sink ADDRESS PORT`` on the ``sink`` host).

``/h/<n>`` behaves by ``n % 10``: 0–5 answer at once, 6–7 fail every third request with a 503,
8 takes 2 s, 9 takes 1 s and fails every fourth request. ``GET /log?since=<index>`` returns the
requests recorded from that index on: ``[time, path, peer, status, digest]``, the time when the
answer was sent (``time.time()``, which every host shares), the status the handler chose and
:func:`digest` of the body, which tells one attempt's request from another's (its
``triggered_at`` is the claim's); ``GET /flight`` the requests being answered, as ``[path, peer]``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
LOG: list[list[object]] = []
SEEN: dict[str, int] = {}
FLIGHT: dict[int, tuple[str, str]] = {}


def digest(body: bytes) -> str:
    """What the sink records of a request's body; the fleet test computes it of an attempt's."""
    return hashlib.sha256(body).hexdigest()[:16]


def behaviour(path: str, seen: int) -> tuple[int, float]:
    """(status, delay) of the ``seen``-th request to ``path``."""
    kind = int(path.rsplit("/", 1)[-1]) % 10
    if kind in (6, 7):
        return (503 if seen % 3 == 2 else 200), 0.0
    if kind == 8:
        return 200, 2.0
    if kind == 9:
        return (500 if seen % 4 == 3 else 200), 1.0
    return 200, 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/log":
            since = int(parse_qs(url.query).get("since", ["0"])[0])
            with LOCK:
                body = json.dumps(LOG[since:]).encode()
            return self.answer(200, body)
        if url.path == "/flight":
            with LOCK:
                body = json.dumps(list(FLIGHT.values())).encode()
            return self.answer(200, body)
        return self.handle_hook(b"")

    def do_POST(self) -> None:
        self.handle_hook(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def handle_hook(self, body: bytes) -> None:
        path, peer = urlsplit(self.path).path, self.client_address[0]
        with LOCK:
            seen = SEEN.get(path, 0)
            SEEN[path] = seen + 1
            FLIGHT[id(self)] = (path, peer)
        status, delay = behaviour(path, seen)
        try:
            time.sleep(delay)
            self.answer(status, b'{"ok": true}' if status == 200 else b'{"error": "try again"}')
        except (ConnectionResetError, BrokenPipeError):
            pass  # the sender's host was cut off meanwhile: the answer is lost, as the fault means it to be
        finally:
            with LOCK:
                FLIGHT.pop(id(self), None)
                LOG.append([time.time(), path, peer, status, digest(body)])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


if __name__ == "__main__":
    Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
