"""A real Redis master, a replica and three Sentinels on loopback, for failover tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.servers import free_port, redis_server_binary

SERVICE = "mymaster"


class SentinelCluster:
    """``redis-server`` as master, replica and Sentinels (``--sentinel``), each on a free port."""

    def __init__(self, sentinels: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="webhookapp-sentinel-"))
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self._redis("master", self.master_port)
        self._redis("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for number, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{number}.conf"  # each its own: Sentinel rewrites it
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            self._start(f"sentinel-{number}", [redis_server_binary(), str(conf), "--sentinel"], port)
        # Ready for a failover: the replica copies the master, and every Sentinel knows the
        # replica and the other Sentinels (they find each other through the master, every 2 s).
        replica_synced = lambda: self._replication(self.replica_port).get("master_link_status") == "up"  # noqa: E731
        self._wait(replica_synced, "the replica to sync")
        for port in self.sentinel_ports:
            self._wait(lambda port=port: self._sentinel_sees_all(port), "the Sentinels to find each other")

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

    def _redis(self, name: str, port: int, *extra: str) -> None:
        command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.dir), "--dbfilename", f"{name}.rdb", *extra]  # fmt: skip
        self._start(name, command, port)

    def _start(self, name: str, command: list[str], port: int) -> None:
        self.processes[name] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(lambda: self._pings(port), f"{name} to start")

    @staticmethod
    def _pings(port: int) -> bool:
        try:
            with Redis(port=port, socket_timeout=0.5) as client:
                return bool(client.ping())
        except RedisError:
            return False

    @staticmethod
    def _replication(port: int) -> dict:
        with Redis(port=port) as client:
            return dict(client.info("replication"))

    def _sentinel_sees_all(self, port: int) -> bool:
        with Redis(port=port, decode_responses=True) as sentinel:
            state = sentinel.sentinel_master(SERVICE)
        others = len(self.sentinel_ports) - 1
        return int(state["num-other-sentinels"]) == others and int(state["num-slaves"]) == 1

    @staticmethod
    def _wait(condition, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Timed out waiting for {what}")
            time.sleep(0.1)
