"""A private three-node Redis Cluster for the ``sergeant-cluster`` runs.

A copy of the minimal logic of ``tests/redis_servers.py``'s ``RedisClusterServers``
(bench does not import the test suite for it): one ``redis-server --cluster-enabled
yes`` per node, each on a free loopback port and in its own temp directory, joined
with ``redis-cli --cluster create ... --cluster-replicas 0``, ready at
``cluster_state:ok`` with all 16384 slots assigned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

#: How long a node, or the whole cluster, may take to come up (seconds).
START_TIMEOUT_SECONDS = 20.0
#: The cluster bus listens on port + 10000, so a node's port must leave room for it.
_BUS_OFFSET = 10000


def _require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name!r} is not on PATH; install it with: apt-get install -y redis")
    return path


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster_port(taken: set[int]) -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + _BUS_OFFSET <= 65535 and port not in taken and _bindable(port + _BUS_OFFSET):
            return port


class RedisCluster:
    """A Redis Cluster of ``size`` primaries (no replicas), each its own redis-server."""

    def __init__(self, size: int = 3) -> None:
        self.server = _require_binary("redis-server")
        self.cli = _require_binary("redis-cli")
        self.ports: list[int] = []
        for _ in range(size):
            self.ports.append(_cluster_port(set(self.ports)))
        self.directories = [tempfile.mkdtemp(prefix="sergeant-bench-cluster-") for _ in self.ports]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node, for ``Connector.params['url']``."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def _cli(self, port: int, *args: str) -> str:
        command = [self.cli, "-h", "127.0.0.1", "-p", str(port), *args]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return completed.stdout

    def _wait(self, predicate: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            with contextlib.suppress(Exception):
                if predicate():
                    return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"timed out after {START_TIMEOUT_SECONDS}s waiting for {what}")
            time.sleep(0.05)

    def start(self) -> None:
        """Start every node, join them (all 16384 slots assigned), wait for state ok."""
        for port, directory in zip(self.ports, self.directories, strict=True):
            args = [
                self.server,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", directory,
                "--logfile", os.path.join(directory, "redis.log"),
                "--protected-mode", "no",
                "--save", "",
                "--appendonly", "no",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
            ]  # fmt: skip
            self.processes.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in self.ports:
            self._wait(lambda port=port: self._cli(port, "ping").strip() == "PONG", f"node {port}")
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        create = ["--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(
            [self.cli, *create], check=True, capture_output=True, timeout=START_TIMEOUT_SECONDS
        )
        self._wait(self._ready, "cluster_state:ok")

    def _ready(self) -> bool:
        wanted = {
            "cluster_state": "ok",
            "cluster_slots_ok": "16384",
            "cluster_known_nodes": str(len(self.ports)),
        }
        for port in self.ports:
            reply = self._cli(port, "cluster", "info")
            info = dict(line.strip().split(":", 1) for line in reply.splitlines() if ":" in line)
            if any(info.get(name) != value for name, value in wanted.items()):
                return False
        return True

    def flush(self) -> None:
        """Empty every node and its script cache (each node is a primary)."""
        for port in self.ports:
            self._cli(port, "flushall")
            self._cli(port, "script", "flush")

    def close(self) -> None:
        """Stop every node and remove its files."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=START_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []
        for directory in self.directories:
            shutil.rmtree(directory, ignore_errors=True)
