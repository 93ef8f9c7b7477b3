"""A real redis-server on a free port, owned by the tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

#: A cluster node also listens on its port + 10000, so redis-server refuses ports above this.
CLUSTER_MAX_PORT = 55535


def free_port(maximum: int = 65535) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port <= maximum:
            return port


def _wait_for_ping(server: RedisServer) -> None:
    client = redis.Redis(port=server.port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert server.process is not None
                if time.monotonic() > deadline or server.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {server.port}") from None
                time.sleep(0.05)
    finally:
        client.close()


#: Tries at starting a server, each on another free port: between finding a port free
#: and redis-server binding it, another process (a parallel test worker) may take it.
START_ATTEMPTS = 5


class RedisServer:
    #: The highest port the server may listen on.
    max_port = 65535

    def __init__(self, binary: str, folder: Path, port: int | None = None) -> None:
        self.binary = binary
        self.folder = folder
        self.port = port or free_port(self.max_port)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def options(self) -> list[str]:
        return ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start(self) -> RedisServer:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.process = subprocess.Popen(
                [self.binary, *self.options()], cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                _wait_for_ping(self)
                return self
            except RuntimeError:
                # Only a server that exited (its port taken) is worth another port.
                if self.process.poll() is None or attempt == START_ATTEMPTS:
                    raise
                self.port = free_port(self.max_port)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class RedisCluster:
    """Three masters with no replicas: the smallest cluster that spreads slots."""

    def __init__(self, binary: str, cli: str, folder: Path) -> None:
        self.cli = cli
        self.nodes: list[_ClusterNode] = []
        for number in range(3):
            node_folder = folder / f"node{number}"
            node_folder.mkdir()
            self.nodes.append(_ClusterNode(binary, node_folder))

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        # Each node learns the slots and the others through gossip, at its own pace; a
        # test that starts when only the first says ok can meet CLUSTERDOWN elsewhere.
        deadline = time.monotonic() + 30
        for node in self.nodes:
            client = redis.Redis(port=node.port)
            try:
                while not _cluster_ready(client.cluster("info"), len(self.nodes)):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Redis cluster node {node.port} did not become ready")
                    time.sleep(0.1)
            finally:
                client.close()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_ready(info: dict[str, object], nodes: int) -> bool:
    """Whether a node's CLUSTER INFO says it serves every slot and knows every node."""
    return (
        info.get("cluster_state") == "ok"
        and int(str(info.get("cluster_slots_ok", 0))) == 16384
        and int(str(info.get("cluster_known_nodes", 0))) == nodes
    )


class _ClusterNode(RedisServer):
    max_port = CLUSTER_MAX_PORT

    def options(self) -> list[str]:
        return [*super().options(), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
