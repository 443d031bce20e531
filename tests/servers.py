"""Private broker servers for the test suite, on free loopback ports.

Each server is a real process owned by the test session: started with a deadline,
stopped (and its files removed) at the end. A missing binary is an error with the
install command, never a skip.
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

START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 30.0,
    interval: float = 0.02,
    message: str = "condition",
) -> None:
    """Poll ``predicate`` until truthy; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _require_binary(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name!r} is not on PATH; install it with: {install_hint}")
    return path


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A private ``redis-server`` on a free loopback port, restartable in place."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.binary = _require_binary("redis-server", "apt-get install -y redis-server")
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="sergeant-redis-")
        self.extra_args = extra_args or ["--save", "", "--appendonly", "no"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def node(self) -> dict[str, object]:
        """The 0.27 ``nodes`` entry for this server."""
        return {"host": "127.0.0.1", "port": self.port, "password": None, "database": 0}

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.directory,
            "--logfile",
            os.path.join(self.directory, "redis.log"),
            "--protected-mode",
            "no",
            *self.extra_args,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, START_TIMEOUT_SECONDS, message=f"redis-server on port {self.port}")

    def ping(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def flush(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            client.flushall()
            client.script_flush()
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        wait_until(lambda: not _port_open(self.port), START_TIMEOUT_SECONDS, message="port freed")

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class MongoWireServer:
    """A private ``nx-27017`` MongoDB wire-protocol server on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="sergeant-nx-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port, "replica_set": None}

    def start(self) -> None:
        binary = shutil.which("nx-27017", path=os.path.dirname(sys.executable)) or shutil.which(
            "nx-27017"
        )
        if binary is None:
            raise RuntimeError("'nx-27017' is not installed; install it with: pip install nx-27017")
        args = [
            binary,
            "--data-dir",
            os.path.join(self.directory, "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-file",
            os.path.join(self.directory, "nx.log"),
            "--pid-file",
            os.path.join(self.directory, "nx.pid"),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, START_TIMEOUT_SECONDS, message=f"nx-27017 on port {self.port}")

    def ping(self) -> bool:
        import pymongo

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            host="127.0.0.1", port=self.port, serverSelectionTimeoutMS=500
        )
        try:
            return bool(client.admin.command("ping").get("ok"))
        finally:
            client.close()

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=START_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)
