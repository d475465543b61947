"""A real forward proxy for tests: proxy.py on a free port of 127.0.0.1, as a subprocess, with a
plugin that notes every upstream connection it is asked for (the ``CONNECT`` target)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proxy.http.parser import HttpParser
from proxy.http.proxy import HttpProxyBasePlugin

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
LOG_VARIABLE = "EGRESS_PROXY_TARGETS"


class RecordTargets(HttpProxyBasePlugin):
    """Appends ``METHOD host:port`` to the file named by ``EGRESS_PROXY_TARGETS`` before the
    proxy connects upstream."""

    def before_upstream_connection(self, request: HttpParser) -> HttpParser | None:
        host = (request.host or b"").decode()
        with open(os.environ[LOG_VARIABLE], "a") as log:
            log.write(f"{(request.method or b'').decode()} {host}:{request.port}\n")
        return request

    def handle_client_request(self, request: HttpParser) -> HttpParser | None:
        return request

    def handle_upstream_chunk(self, chunk):  # type: ignore[no-untyped-def]
        return chunk

    def on_upstream_connection_close(self) -> None:
        pass


class EgressProxy:
    """proxy.py listening on 127.0.0.1; ``credentials`` (``user:password``) turn on its basic
    authentication. ``port`` stays the same across :meth:`stop` and :meth:`start`."""

    def __init__(self, credentials: str | None = None) -> None:
        self.port = free_port()
        self.credentials = credentials
        self.dir = Path(tempfile.mkdtemp(prefix="webhookapp-proxy-"))
        self.targets_file = self.dir / "targets"
        self.targets_file.touch()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.credentials + '@' if self.credentials else ''}127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(self.port),
                   "--num-workers", "1", "--num-acceptors", "1", "--log-level", "WARNING",
                   "--plugins", f"{__name__}.RecordTargets"]  # fmt: skip
        if self.credentials:
            command += ["--basic-auth", self.credentials]
        environment = {**os.environ, LOG_VARIABLE: str(self.targets_file), "PYTHONPATH": str(ROOT)}
        with open(self.dir / "stderr", "ab") as errors:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # a group of its own: proxy.py forks its acceptors
                command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"proxy.py exited: {(self.dir / 'stderr').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("proxy.py did not start")

    def targets(self) -> list[str]:
        """What the proxy was asked to connect to, in order (``CONNECT 127.0.0.1:8765``)."""
        return self.targets_file.read_text().splitlines()

    def stop(self) -> None:
        """Stop proxy.py and its acceptor processes; return once its port refuses connections
        (an acceptor outliving its parent for a moment took a test's connection, which then
        waited for an answer instead of being refused)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # whatever of the group is left
        self.process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)
