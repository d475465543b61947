"""The fleet's servers, each on its host (tests/fleet/hosts.py): PostgreSQL (a primary on ``db``, a
streaming standby on ``db2``), Redis (master on ``db``, replica on ``db2``, Sentinels on ``db``,
``db2`` and ``web``), gunicorn on ``web``, workers on ``w1``..``w3`` and the handlers on ``sink``.

Every process's output goes to ``$TMPDIR/webhookapp-fleet-logs/<name>.log``, kept until the next
run; :meth:`Cluster.tracebacks` reads them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.fleet import hosts
from tests.servers import redis_server_binary

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVICE = "mymaster"
SINK_PORT = 9000
WEB_PORT = 8000
# The suite's fixed key (config.TestingConfig): the seeding app and the fleet's processes share it.
ENCRYPTION_KEY = "dGVzdGluZy1rZXktMzItYnl0ZXMtbG9uZy0tLS0tLS0="
SENTINEL_HOSTS = ("db", "db2", "web")
PG_HOSTS = ("db", "db2")


def database_url(driver: str = "postgresql+psycopg") -> str:
    """Both PostgreSQL hosts; libpq takes the first that accepts writes."""
    servers = "&".join(f"host={hosts.address(host)}:5432" for host in PG_HOSTS)
    return f"{driver}://postgres@/fleet?{servers}&target_session_attrs=read-write&connect_timeout=2"


def redis_url() -> str:
    sentinels = ",".join(f"{hosts.address(host)}:26379" for host in SENTINEL_HOSTS)
    return f"redis+sentinel://{sentinels}/{SERVICE}/0"


def app_env(**extra: object) -> dict[str, str]:
    """The environment of the web server and the workers: production settings, short timeouts."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "WEBHOOKAPP_CONFIG": "production",
        "SECRET_KEY": "fleet-secret-key",
        "WEBHOOK_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "WEBHOOK_API_URL": f"http://{hosts.address('web')}:{WEB_PORT}/public/v1/",
        "WEBHOOK_ALLOWED_NETWORKS": f"{hosts.address('sink')}/32",
        # A lease is 2 × timeout + timeout (schedule.lease_seconds): 12 s, so a host cut off
        # hands its sends on within the run's time.
        "WEBHOOK_DELIVERY_TIMEOUT": "4",
        "WEBHOOK_RETRY_BASE": "1",
        "WEBHOOK_RETRY_FACTOR": "1.5",
        "WEBHOOK_RETRY_MAX_INTERVAL": "4",
        "WEBHOOK_MAX_ATTEMPTS": "30",
        "WEBHOOK_WORKER_THREADS": "32",
    }
    env.update({name: str(value) for name, value in extra.items()})
    return env


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def listening(host: str, port: int) -> bool:
    """A TCP connect from the calling thread's host (the client's, in the test)."""
    try:
        with socket.create_connection((hosts.address(host), port), timeout=0.5):
            return True
    except OSError:
        return False


class Cluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="whf-"))
        self.dir.chmod(0o755)  # PostgreSQL runs as postgres and keeps its data below
        # Kept after the run (the last run's only), for a failure to be read.
        self.logs = Path(tempfile.gettempdir()) / "webhookapp-fleet-logs"
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir()
        self.logs.chmod(0o777)  # PostgreSQL's own logs too
        self.processes: dict[str, subprocess.Popen] = {}

    # Processes ------------------------------------------------------------------------------

    def spawn(self, host: str, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("a")
        with log:
            process = subprocess.Popen([*hosts.exec_in(host), *command], cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.processes[name] = process
        return process

    def run(self, host: str, command: list[str], user: str | None = None) -> str:
        prefix = ["runuser", "-u", user, "--"] if user else []
        result = subprocess.run([*hosts.exec_in(host), *prefix, *command], cwd=ROOT, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"{command[0]} on {host}: {result.stdout}{result.stderr}")
        return result.stdout

    def signal(self, name: str, signum: int) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signum)

    def kill(self, name: str) -> None:
        """SIGKILL: no goodbye to anyone. The process is no longer the cluster's to watch."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def wait_exit(self, name: str, timeout: float) -> int:
        return self.processes.pop(name).wait(timeout=timeout)

    def tracebacks(self) -> dict[str, str]:
        """The log lines around each traceback, per log file."""
        found = {}
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                at = text.index("Traceback")
                found[log.stem] = text[max(0, at - 300) : at + 3000]
        return found

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        hosts.tear_down()  # also the daemons pg_ctl started
        shutil.rmtree(self.dir, ignore_errors=True)

    # PostgreSQL -----------------------------------------------------------------------------

    def pg_dir(self, host: str) -> Path:
        return self.dir / f"pg-{host}"

    @staticmethod
    def own_dir(path: Path) -> Path:
        """An empty directory of postgres's own (it refuses to run as root)."""
        path.mkdir(mode=0o700)
        shutil.chown(path, "postgres", "postgres")
        return path

    def socket_dir(self, host: str) -> Path:
        """Not in the data directory: a base backup would copy the socket's lock file."""
        path = self.dir / f"socket-{host}"
        if not path.exists():
            self.own_dir(path)
        return path

    def pg_ctl(self, host: str, *args: str, check: bool = True) -> str:
        try:
            return self.run(host, [str(PG_BIN / "pg_ctl"), "-D", str(self.pg_dir(host)), *args], user="postgres")
        except RuntimeError:
            if check:
                raise
            return ""

    def kill_postgresql(self, host: str) -> None:
        """SIGKILL to the postmaster and every backend: a crashed server, no shutdown checkpoint."""
        postmaster = int((self.pg_dir(host) / "postmaster.pid").read_text().split()[0])
        found = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        for pid in [postmaster, *map(int, found)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pg_start(self, host: str, *settings: str) -> None:
        options = [f"-c listen_addresses={hosts.address(host)}", "-c port=5432", f"-k {self.socket_dir(host)}",
                   "-c fsync=off", "-c full_page_writes=off", *settings]  # fmt: skip
        self.pg_ctl(host, "-w", "-l", str(self.logs / f"postgresql-{host}.log"), "start", "-o", " ".join(options))

    def start_postgresql(self) -> None:
        """A primary on db whose commits wait for the standby on db2 (none is lost to a kill)."""
        primary = self.own_dir(self.pg_dir("db"))
        self.run("db", [str(PG_BIN / "initdb"), "-D", str(primary), "-A", "trust", "-U", "postgres",
                        "--no-sync"], user="postgres")  # fmt: skip
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {hosts.SUBNET}.0/24 trust\nhost replication all {hosts.SUBNET}.0/24 trust\n")
        self.pg_start("db")
        self.run("db", [str(PG_BIN / "createdb"), "-h", hosts.address("db"), "fleet"], user="postgres")
        self.start_standby("db2", of="db")
        # Synchronous from now on: an event the API answered 202 for is on both servers, and a
        # primary killed loses none. The standby's command line says it waits for no one itself.
        self.psql("db", "ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.psql("db", "SELECT pg_reload_conf()")

    def psql(self, host: str, sql: str) -> str:
        return self.run(host, [str(PG_BIN / "psql"), "-h", hosts.address(host), "-d", "fleet", "-XAtc", sql],
                        user="postgres")  # fmt: skip

    def start_standby(self, host: str, of: str) -> None:
        shutil.rmtree(self.pg_dir(host), ignore_errors=True)
        self.own_dir(self.pg_dir(host))
        command = [str(PG_BIN / "pg_basebackup"), "-R", "-X", "stream", "--checkpoint=fast",
                   "-D", str(self.pg_dir(host)), "-h", hosts.address(of), "-U", "postgres"]  # fmt: skip
        self.run(host, command, user="postgres")
        self.pg_start(host, "-c synchronous_standby_names=")

    # Redis ----------------------------------------------------------------------------------

    def redis(self, host: str, name: str, *extra: str) -> None:
        command = [redis_server_binary(), "--port", "6379", "--bind", hosts.address(host), "--protected-mode", "no",
                   "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--dbfilename", f"{name}.rdb",
                   *extra]  # fmt: skip
        self.spawn(host, name, command)

    def start_redis(self) -> None:
        self.redis("db", "redis-master")
        self.redis("db2", "redis-replica", "--replicaof", hosts.address("db"), "6379")
        for host in SENTINEL_HOSTS:
            conf = self.dir / f"sentinel-{host}.conf"  # each its own: Sentinel rewrites it
            conf.write_text(
                f"port 26379\nbind {hosts.address(host)}\nprotected-mode no\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} {hosts.address('db')} 6379 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            self.spawn(host, f"sentinel-{host}", [redis_server_binary(), str(conf), "--sentinel"])

    # The application ------------------------------------------------------------------------

    def migrate(self) -> None:
        env = app_env()
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                                env=env, capture_output=True, text=True)  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"migrations: {result.stdout}{result.stderr}")

    def start_sink(self) -> None:
        self.spawn("sink", "sink", [sys.executable, "-m", "tests.fleet.sink", hosts.address("sink"), str(SINK_PORT)])

    def start_web(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "-b", f"{hosts.address('web')}:{WEB_PORT}", "--workers", "2",
                   "--threads", "8", "--graceful-timeout", "10", "--no-control-socket", "wsgi:app"]  # fmt: skip
        self.spawn("web", "web", command, app_env())

    def start_worker(self, host: str) -> subprocess.Popen:
        return self.spawn(host, f"worker-{host}", [sys.executable, "-m", "workers"], app_env())
