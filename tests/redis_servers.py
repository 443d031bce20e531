"""Private Redis set-ups beyond one plain server: a 3-node cluster, and TLS with an ACL user.

Built on :class:`tests.servers.RedisServer` (free loopback ports, own temp
directories, a deadline on start). Certificates come from a throwaway CA made with
the ``openssl`` command; a missing binary is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

import redis

from tests.servers import START_TIMEOUT_SECONDS, RedisServer, _require_binary, free_port, wait_until

__all__ = ["ACL_PASSWORD", "ACL_USER", "RedisClusterServers", "SecureRedisServer"]

#: The ACL user of :class:`SecureRedisServer` and its password.
ACL_USER = "sergeant-app"
ACL_PASSWORD = "s3cret-pw"

_PLAIN = ["--save", "", "--appendonly", "no"]


class RedisClusterServers:
    """A Redis Cluster of ``size`` primaries (no replicas), each its own redis-server."""

    def __init__(self, size: int = 3) -> None:
        self.cli = _require_binary("redis-cli", "apt-get install -y redis-tools")
        self.servers = []
        for _ in range(size):
            server = RedisServer(
                [*_PLAIN, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            )
            # The cluster bus listens on port + 10000, so the port must leave room for it.
            while server.port > 55535 or not _free(server.port + 10000):
                server.port = free_port()
            self.servers.append(server)

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node, for ``Connector.params['url']``."""
        hosts = ",".join(f"127.0.0.1:{server.port}" for server in self.servers)
        return f"redis+cluster://{hosts}"

    def start(self) -> None:
        """Start every node, join them (all 16384 slots assigned), wait for state ok."""
        for server in self.servers:
            server.start()
        addresses = [f"127.0.0.1:{server.port}" for server in self.servers]
        create = ["--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(
            [self.cli, *create],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_SECONDS,
        )
        wait_until(self._ready, START_TIMEOUT_SECONDS, interval=0.1, message="cluster_state:ok")

    def _ready(self) -> bool:
        wanted = {
            "cluster_state": "ok",
            "cluster_slots_ok": "16384",
            "cluster_known_nodes": str(len(self.servers)),
        }
        for server in self.servers:
            reply = subprocess.run(
                [self.cli, "-p", str(server.port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            info = dict(line.strip().split(":", 1) for line in reply.splitlines() if ":" in line)
            if any(info.get(name) != value for name, value in wanted.items()):
                return False
        return True

    def primary_clients(self) -> list[redis.Redis]:
        """A plain client of each node (every node is a primary), in ``servers`` order."""
        return [redis.Redis(host="127.0.0.1", port=server.port) for server in self.servers]

    def flush(self) -> None:
        """Empty every node and its script cache."""
        for server in self.servers:
            server.flush()

    def close(self) -> None:
        """Stop every node and remove its files."""
        for server in self.servers:
            server.close()


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _openssl(*args: str, cwd: str) -> None:
    binary = _require_binary("openssl", "apt-get install -y openssl")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: str) -> None:
    """A throwaway CA (``ca.crt``), a server certificate for 127.0.0.1 (``server.*``) and a
    client certificate (``client.*``) signed by it, in ``directory``."""
    ca = ["-days", "2", "-subj", "/CN=sergeant-test-ca", "-keyout", "ca.key", "-out", "ca.crt"]
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", *ca, cwd=directory)
    with open(os.path.join(directory, "san.cnf"), "w", encoding="utf-8") as file:
        file.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        request = ["-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr"]
        _openssl("req", "-newkey", "rsa:2048", "-nodes", *request, cwd=directory)
        sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
        sign += ["-extfile", "san.cnf", "-in", f"{name}.csr", "-out", f"{name}.crt"]
        _openssl("x509", "-req", *sign, cwd=directory)


class SecureRedisServer(RedisServer):
    """A redis-server with a TLS port (client certificates required) and an ACL user.

    The plain port stays open for the fixtures' PING and FLUSHALL (default user);
    ``tls_port`` speaks TLS only. The ACL user :data:`ACL_USER` may run everything.
    """

    def __init__(self) -> None:
        self.certs = tempfile.mkdtemp(prefix="sergeant-certs-")
        make_certificates(self.certs)
        self.tls_port = free_port()
        super().__init__(
            [
                *_PLAIN,
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", self.cert("server.crt"),
                "--tls-key-file", self.cert("server.key"),
                "--tls-ca-cert-file", self.cert("ca.crt"),
                "--tls-auth-clients", "yes",
            ]
        )  # fmt: skip

    def start(self) -> None:
        """Start the server, then add the ACL user (``--user`` is a config-file directive
        only: redis-server reads the whole argument as one token)."""
        super().start()
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            client.acl_setuser(
                ACL_USER,
                reset=True,
                enabled=True,
                passwords=[f"+{ACL_PASSWORD}"],
                keys=["*"],
                channels=["*"],
                commands=["+@all"],
            )
        finally:
            client.close()

    def cert(self, name: str) -> str:
        """The path of one generated file (``ca.crt``, ``client.key``, ...)."""
        return os.path.join(self.certs, name)

    @property
    def tls_url(self) -> str:
        """``rediss://`` for the TLS port, with the CA and client certificate as query."""
        return (
            f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.cert('ca.crt')}"
            f"&ssl_certfile={self.cert('client.crt')}&ssl_keyfile={self.cert('client.key')}"
        )

    def acl_url(self, password: str = ACL_PASSWORD) -> str:
        """``redis://`` for the plain port as the ACL user."""
        return f"redis://{ACL_USER}:{password}@127.0.0.1:{self.port}/0"

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.certs, ignore_errors=True)
