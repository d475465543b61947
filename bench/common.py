"""Shared pieces of the benchmarks: resources that clean up after themselves, a database filled
through the services, a fast local handler in its own process, child processes, tables.

Everything a benchmark starts (redis-server, workers, gunicorn, the handler, temporary
directories, the tables it created) is registered on an :class:`contextlib.ExitStack` and torn
down in reverse order, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from tests.servers import RedisServer
from tests.servers import free_port as free_port  # re-exported for the benchmarks

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-secret-key"
# Databases other people use on the shared machine: never touched, whatever is passed.
FORBIDDEN_DATABASES = {"test", "scratch"}


# --------------------------------------------------------------------------------------------
# Options and the database


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL of a database you own, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/bench "
        "(its webhookapp tables are created and dropped); default: a temporary SQLite file",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="drop webhookapp tables left in --database-url by an interrupted run",
    )
    parser.add_argument("--keep-logs", action="store_true", help="print the child processes' logs at the end")


def stop_on_sigterm() -> None:
    """A plain ``kill`` of the benchmark unwinds like Ctrl-C, so its children and files go too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run_main(run: Callable[[Any], int], args: Any) -> int:
    """Run a benchmark; Ctrl-C and SIGTERM stop everything it started."""
    stop_on_sigterm()
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130


def describe_database(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "SQLite (temporary file, WAL)"
    return f"PostgreSQL {parsed.host}:{parsed.port or 5432}/{parsed.database}"


def refuse_shared_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" and parsed.database in FORBIDDEN_DATABASES:
        raise SystemExit(f"Refusing to use the shared database {parsed.database!r}: create one of your own (bench).")


@contextlib.contextmanager
def prepared_app(database_url: str, redis_url: str, *, reset: bool = False) -> Iterator[Any]:
    """An app on ``database_url`` with fresh tables, its context pushed; tables dropped on exit."""
    from webhookapp import create_app
    from webhookapp.infra.extensions import db

    refuse_shared_database(database_url)
    app = create_app(
        "development",
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY},
    )
    with app.app_context():
        existing = set(inspect(db.engine).get_table_names()) & set(db.metadata.tables)
        if existing and not reset:
            raise SystemExit(
                f"{describe_database(database_url)} already has webhookapp tables ({', '.join(sorted(existing))}). "
                "Use an empty database of your own, or --reset if an interrupted benchmark left them."
            )
        db.drop_all()
        db.create_all()
        try:
            yield app
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


@dataclass
class Tenant:
    account: Any
    token: Any  # the ApiToken row
    plain_token: str
    products: dict[str, Any]
    webhook_ids: dict[str, list[str]]


def make_tenant(handler_url: str, webhooks_per_product: dict[str, int]) -> Tenant:
    """A vendor account with a user, an API token and one product per entry of ``webhooks_per_product``,
    each with that many active Fulfillment Requests (event) webhooks calling ``handler_url``."""
    from webhookapp.services import accounts, tokens, webhook_changes

    account = accounts.create_account("vendor", "Bench Vendor")
    accounts.create_user(account.id, "bench@example.com", "bench-password", name="Bench User")
    token, plain = tokens.create_token(account, "bench")
    products, ids = {}, {}
    for name, count in webhooks_per_product.items():
        product = accounts.create_product(account.id, f"Bench {name}")
        products[name] = product
        ids[name] = [
            webhook_changes.create_webhook(
                account,
                {
                    "label": f"{name} hook {index}",
                    "product_id": product.id,
                    "type_key": "fulfillment_request.event",
                    "http_method": "POST",
                    "external_url": f"{handler_url}/hook/{name}/{index}",
                    "active": True,
                },
            ).id
            for index in range(count)
        ]
    analyze()
    return Tenant(account, token, plain, products, ids)


def analyze() -> None:
    """Planner statistics, as any database in service has (autovacuum would gather them later)."""
    from webhookapp.infra.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def engine_env(database_url: str, redis_url: str, **settings: object) -> dict[str, str]:
    """The environment of a worker or web process (docs/architecture.md, "Configuration") against
    the benchmark's stores."""
    env = dict(os.environ)
    env.update(
        WEBHOOKAPP_CONFIG="development",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=SECRET_KEY,
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        PYTHONUNBUFFERED="1",
    )
    env.update({name: str(value) for name, value in settings.items()})
    return env


# --------------------------------------------------------------------------------------------
# Resources


def temp_dir(stack: contextlib.ExitStack, prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


def private_redis(stack: contextlib.ExitStack) -> RedisServer:
    """A redis-server of our own on a free port (never the shared one on 6379)."""
    server = RedisServer()
    stack.callback(server.close)
    server.start()
    return server


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_child(
    stack: contextlib.ExitStack,
    name: str,
    args: Sequence[str],
    env: dict[str, str],
    log_dir: Path,
    *,
    stop_signal: int = signal.SIGTERM,
    show_log: bool = False,
) -> Child:
    """Start a process, logging to ``log_dir``; it is stopped (signal, then kill) on exit."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(args), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    child = Child(name, process, log_path)

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if show_log:
            print(f"\n----- log of {name} -----\n{child.log_tail(200)}", file=sys.stderr)

    stack.callback(stop)
    return child


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.005) -> Any:
    """Poll ``predicate`` until it returns something truthy; RuntimeError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"Timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_for_port(port: int, timeout: float, what: str, child: Child | None = None) -> None:
    def listening() -> bool:
        if child is not None:
            child.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(listening, timeout, what, interval=0.05)


# --------------------------------------------------------------------------------------------
# Measuring


@contextlib.contextmanager
def py_spy(output: str, pid: int, what: str, *, rate: int, subprocesses: bool = False) -> Iterator[None]:
    """py-spy samples of process ``pid`` (with ``subprocesses``, its children too) for the duration
    of the block, written to ``output`` as collapsed stacks; it slows the process it samples."""
    executable = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if executable is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    options = ["--subprocesses"] if subprocesses else []
    command = [executable, "record", "--pid", str(pid), *options, "--gil", "--rate", str(rate), "--format", "raw"]
    process = subprocess.Popen([*command, "-o", output], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"py-spy profile of {what}: {output}", flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in 0..1) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class CpuMeter:
    """Machine-wide CPU use (``/proc/stat``) and the CPU seconds of given process trees over an interval,
    and of this machine's PostgreSQL server processes (all of them: they serve every database)."""

    def __init__(self, pids: Iterable[int] = ()):
        self.pids = list(pids)
        self.start()

    @staticmethod
    def _machine() -> tuple[float, float]:
        with open("/proc/stat") as stat:
            fields = [float(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def _trees(self) -> float:
        import psutil

        total = 0.0
        for pid in self.pids:
            try:
                root = psutil.Process(pid)
                for process in [root, *root.children(recursive=True)]:
                    times = process.cpu_times()
                    total += times.user + times.system
            except psutil.Error:
                pass
        return total

    @staticmethod
    def _postgresql() -> float:
        import psutil

        total = 0.0
        for process in psutil.process_iter(["name", "cpu_times"]):
            if (process.info["name"] or "").startswith("postgres") and process.info["cpu_times"]:
                total += process.info["cpu_times"].user + process.info["cpu_times"].system
        return total

    def start(self) -> None:
        self._busy, self._total = self._machine()
        self._own = time.process_time()
        self._children = self._trees()
        self._database = self._postgresql()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        busy, total = self._machine()
        wall = time.monotonic() - self._wall
        return {
            "machine_busy": (busy - self._busy) / max(total - self._total, 1e-9),  # fraction of all cores
            "own_cpu": time.process_time() - self._own,
            "children_cpu": self._trees() - self._children,
            "database_cpu": self._postgresql() - self._database,
            "wall": wall,
        }


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    header = [str(cell) for cell in header]
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    line = "  ".join("-" * width for width in widths)

    def render(cells: list[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(cells))

    print(f"\n{title}\n{line}\n{render(header)}\n{line}")
    for row in rows:
        print(render(row))
    print(line, flush=True)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# --------------------------------------------------------------------------------------------
# The fast local handler

RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


def _request_length(buffer: bytearray) -> int | None:
    """The length of the first request in ``buffer`` (head and body), None until it is complete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    length = 0
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
    total = end + 4 + length
    return total if len(buffer) >= total else None


def _serve_handler(port: Any, count: Any, arrivals: Any, ready: Any, delay: float, peak: Any) -> None:
    """Child process: an asyncio HTTP/1.1 keep-alive server answering 200 to everything, ``delay``
    seconds after each request arrived.

    Each complete request's arrival (``time.time()``) goes into the shared ``arrivals`` array at
    index ``count``, which then increases; the parent reads both without any messaging. ``peak``
    is the most requests held unanswered at once. A held request is a timer on the event loop,
    not a thread: the handler holds as many at once as clients send.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    capacity = len(arrivals)
    held = 0

    def answer(transport: Any) -> None:
        nonlocal held
        held -= 1
        if not transport.is_closing():
            transport.write(RESPONSE)

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.loop = asyncio.get_running_loop()
            self.buffer = bytearray()
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            nonlocal held
            buffer = self.buffer
            buffer += data
            while (total := _request_length(buffer)) is not None:
                del buffer[:total]
                index = count.value
                if index < capacity:
                    arrivals[index] = time.time()
                count.value = index + 1
                if delay > 0:
                    held += 1
                    peak.value = max(peak.value, held)
                    self.loop.call_later(delay, answer, self.transport)
                else:
                    self.transport.write(RESPONSE)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, "127.0.0.1", 0, backlog=1024)
        port.value = server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


class Handler:
    """The handler process; ``count`` and ``arrival(i)`` read its records from shared memory.

    It answers at once, or ``delay`` seconds after each request arrived (a slow handler);
    ``peak`` is then the most requests it held at once.
    """

    def __init__(self, stack: contextlib.ExitStack, capacity: int, delay: float = 0.0):
        context = multiprocessing.get_context("spawn")  # nothing of the parent (app, sockets) leaks in
        self._port = context.RawValue("i", 0)
        self._count = context.RawValue("q", 0)
        self._peak = context.RawValue("q", 0)
        self._arrivals = context.RawArray("d", capacity)
        ready = context.Event()
        self.process = context.Process(
            target=_serve_handler,
            args=(self._port, self._count, self._arrivals, ready, delay, self._peak),
            name="bench-handler",
        )
        self.process.start()
        stack.callback(self.close)
        if not ready.wait(15):
            raise RuntimeError("The handler process did not start")
        self.url = f"http://127.0.0.1:{self._port.value}"

    @property
    def count(self) -> int:
        return self._count.value

    @property
    def peak(self) -> int:
        return self._peak.value

    def reset_peak(self) -> None:
        self._peak.value = 0

    def arrival(self, index: int) -> float:
        return self._arrivals[index]

    def arrivals(self, start: int, stop: int) -> list[float]:
        return list(self._arrivals[start:stop])

    def wait_count(self, target: int, timeout: float, interval: float = 0.001) -> None:
        def reached() -> bool:
            if not self.process.is_alive():
                raise RuntimeError("The handler process died")
            return self._count.value >= target

        wait_until(reached, timeout, f"{target} requests at the handler (have {self.count})", interval)

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)


def plain_send(session: Any, webhook: Any, api_url: str, processing_timeout: float) -> bool:
    """What a delivery is without the engine: build, sign and POST ``webhook``'s request (a
    snapshot, :func:`webhookapp.engine.types.snapshot`) on a keep-alive ``requests.Session``."""
    from webhookapp.core.times import utcnow
    from webhookapp.engine import signing
    from webhookapp.version import __version__

    now = utcnow()
    payload = signing.build_payload(webhook, triggered_at=now, api_url=api_url, processing_timeout=processing_timeout)
    secret = signing.secret_of(webhook)
    token = signing.sign(payload, secret, triggered_at=now, processing_timeout=processing_timeout)
    response = session.post(
        webhook.external_url,
        data=json.dumps(payload, separators=(",", ":")).encode(),
        headers={
            **webhook.headers,
            "User-Agent": f"webhookapp/{__version__}",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
        timeout=10,
        allow_redirects=False,
    )
    response.content  # noqa: B018 - read the body, as the engine does
    return 200 <= response.status_code < 300


def database_counts(db: Any, sql: str, **params: object) -> Any:
    """One fresh read (the transaction ends at once, so SQLite shows other processes' commits)."""
    try:
        return db.session.execute(text(sql), params).one()
    finally:
        db.session.rollback()
