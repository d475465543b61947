"""Hosts as Linux network namespaces on a bridge of their own (``make fleet``).

Every host is a namespace ``whf-NAME`` with one veth (``eth0``) whose address is in 10.213.0.0/24;
the other ends of the veths hang on a bridge inside one more namespace, ``whf-net`` (the
switch). Nothing is added to the machine's own namespace: no address, no route, no NAT, so
the hosts reach one another and their own loopback, and nothing else. Cutting a host off is
setting its switch port down.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterator

PREFIX = "whf-"
SWITCH = f"{PREFIX}net"
SUBNET = "10.213.0"
HOSTS = {"db": 2, "db2": 3, "web": 10, "w1": 11, "w2": 12, "w3": 13, "sink": 20, "client": 30}
CLONE_NEWNET = 0x40000000


def address(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


def namespace(host: str) -> str:
    return f"{PREFIX}{host}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def ours() -> list[str]:
    """The namespaces a run of this harness made (a crashed run leaves them behind)."""
    listed = ip("netns", "list").stdout.split("\n")
    return [line.split()[0] for line in listed if line.startswith(PREFIX)]


def tear_down() -> None:
    """Kill what runs in our namespaces, then delete them (with their veths and the bridge)."""
    for name in ours():
        for pid in ip("netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(ip("netns", "pids", name, check=False).stdout.strip() for name in ours()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for name in ours():
        ip("netns", "delete", name, check=False)


def build(hosts: list[str]) -> None:
    """The switch and one namespace per host, each with loopback up and its veth on the bridge."""
    tear_down()
    ip("netns", "add", SWITCH)
    ip("-n", SWITCH, "link", "set", "lo", "up")
    ip("-n", SWITCH, "link", "add", "br0", "type", "bridge")
    ip("-n", SWITCH, "link", "set", "br0", "up")
    for host in hosts:
        ns = namespace(host)
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", SWITCH, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", SWITCH, "link", "set", host, "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{address(host)}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")


def cut(host: str) -> None:
    """The host's switch port down: its packets go nowhere, and nothing reaches it."""
    ip("-n", SWITCH, "link", "set", host, "down")


def reconnect(host: str) -> None:
    ip("-n", SWITCH, "link", "set", host, "up")


def routes_of(host: str) -> str:
    return ip("-n", namespace(host), "route", "show").stdout


def exec_in(host: str) -> list[str]:
    """The command prefix that runs a program on ``host``."""
    return ["ip", "netns", "exec", namespace(host)]


@contextlib.contextmanager
def inside(host: str) -> Iterator[None]:
    """This thread (and the threads and processes it starts meanwhile) on ``host``'s network."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace(host)}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), f"setns into {namespace(host)}")
        yield
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        os.close(target)
