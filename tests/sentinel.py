"""A real Redis master, a replica and three Sentinels on loopback, for failover tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.servers import free_port, redis_server_binary, wait_for_redis

SERVICE = "mymaster"


class SentinelCluster:
    """``redis-server`` as master, replica and Sentinels (``--sentinel``), each on a free port."""

    def __init__(self, sentinels: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="webhookapp-sentinel-"))
        self.master_port = 0  # each port is taken when its server starts (see _start)
        self.replica_port = 0
        self.sentinel_ports = [0] * sentinels
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self.master_port = self._redis("master")
        self.replica_port = self._redis("replica", "--replicaof", "127.0.0.1", str(self.master_port))
        for number in range(len(self.sentinel_ports)):
            self.sentinel_ports[number] = self._start(f"sentinel-{number}", self._sentinel_command(number))
        # Ready for a failover: the replica copies the master, and every Sentinel knows the
        # replica and the other Sentinels (they find each other through the master, every 2 s).
        replica_synced = lambda: self._replication(self.replica_port).get("master_link_status") == "up"  # noqa: E731
        self._wait(replica_synced, "the replica to sync")
        for port in self.sentinel_ports:
            self._wait(lambda port=port: self._sentinel_sees_all(port), f"the Sentinel on {port} to see the others",
                       lambda port=port: self._sentinel_state(port))  # fmt: skip

    def kill_master(self) -> None:
        """SIGKILL: no goodbye to the replica or the clients."""
        process = self.processes.pop("master")
        process.kill()
        process.wait()

    def master_standing(self) -> bool:
        """The master started with is running, and the Sentinels still name it."""
        started = self.processes.get("master")
        if started is None or started.poll() is not None:
            return False
        try:
            return self.master_address() == ("127.0.0.1", self.master_port)
        except RedisError:  # a Sentinel gone: not a cluster to hand on
            return False

    def master_address(self) -> tuple[str, int]:
        with Redis(port=self.sentinel_ports[0], decode_responses=True) as sentinel:
            host, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return host, int(port)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        self.processes.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _redis(self, name: str, *extra: str) -> int:
        def command(port: int) -> list[str]:
            return [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                    "no", "--dir", str(self.dir), "--dbfilename", f"{name}.rdb", *extra]  # fmt: skip

        return self._start(name, command)

    def _sentinel_command(self, number: int) -> Callable[[int], list[str]]:
        def command(port: int) -> list[str]:
            conf = self.dir / f"sentinel-{number}.conf"  # each its own: Sentinel rewrites it
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            return [redis_server_binary(), str(conf), "--sentinel"]

        return command

    def _start(self, name: str, command: Callable[[int], list[str]], attempts: int = 5) -> int:
        """Start ``name`` on a free port and return the port. A free port is only free when it
        was asked for: a test in another process may take it first, and then this server exits
        (address in use) while another answers there. So the server that answers must be ours
        (see ``wait_for_redis``), and a lost port is tried again on a new one."""
        for _ in range(attempts):
            port = free_port()
            process = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.processes[name] = process
            if wait_for_redis(process, port):
                return port
        raise RuntimeError(f"{name} found no free port in {attempts} tries")

    @staticmethod
    def _replication(port: int) -> dict:
        with Redis(port=port) as client:
            return dict(client.info("replication"))

    def _sentinel_state(self, port: int) -> dict:
        with Redis(port=port, decode_responses=True) as sentinel:
            return dict(sentinel.sentinel_master(SERVICE))

    def _sentinel_sees_all(self, port: int) -> bool:
        state = self._sentinel_state(port)
        others = len(self.sentinel_ports) - 1
        return int(state["num-other-sentinels"]) == others and int(state["num-slaves"]) == 1

    @staticmethod
    def _wait(condition: Callable[[], bool], what: str, describe: Callable[[], object] | None = None,
              timeout: float = 30.0) -> None:  # fmt: skip
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                seen = f"; last seen: {describe()}" if describe else ""
                raise RuntimeError(f"Timed out waiting for {what}{seen}")
            time.sleep(0.1)
