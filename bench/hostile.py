"""Hostile clients against a running bridge: idle, trickling and stalled connections.

    python bench/hostile.py idle --port 8080 --connections 256 --seconds 60
    python bench/hostile.py trickle --port 8080 --connections 16 --seconds 30
    python bench/hostile.py healthz-body --port 8080 --connections 4 --seconds 20
    python bench/hostile.py grpc-silent --port 8080 --grpc-port 8123 --connections 1100 --seconds 20
    python bench/hostile.py grpc-stalled --port 8080 --grpc-port 8123 --connections 16 --seconds 20

Opens the connections, then probes ``/healthz`` and a queue's ``taskqueues.get`` (and
with ``--grpc-port`` the same queue's GetQueue) from a well-behaved client every half
second while they are held, and prints the worst and median latency of each, and how
many of the hostile connections the server closed on its own. What each mode holds:

- idle: HTTP connections that sent the single byte ``G``;
- trickle: HTTP connections that send one byte of a request head per second;
- healthz-body: ``GET /healthz`` requests announcing a 100-byte body, trickled a byte
  every half second (the probe lane's case);
- grpc-silent: connections to the gRPC port that send nothing at all;
- grpc-stalled: gRPC calls that send their headers and never their request, all on
  one connection (``--connections`` is the number of calls).
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.raw_grpc import open_calls_without_requests  # noqa: E402

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096 + b"\r\n\r\n"
HEALTHZ_WITH_BODY = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
API = "/taskqueue/v1beta2/projects/s~hostile/taskqueues/probe"
QUEUE = "projects/s~hostile/locations/here/queues/probe"
GET_QUEUE = "/google.cloud.tasks.v2beta2.CloudTasks/GetQueue"
#: What a probe that got no answer counts as (its timeout).
NO_ANSWER = 30.0


def hostile_connections(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def probe(port: int, path: str) -> float:
    """Seconds one fresh connection takes to get an answer (NO_ANSWER if none)."""
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=NO_ANSWER)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
    except OSError:
        return NO_ANSWER
    finally:
        connection.close()
    return time.monotonic() - start


def grpc_probe(port: int) -> float:
    """Seconds a GetQueue on a new channel takes to be answered, found or not (NO_ANSWER if not)."""
    import grpc
    from google.cloud.tasks_v2beta2.types import cloudtasks

    start = time.monotonic()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        get = channel.unary_unary(GET_QUEUE, request_serializer=cloudtasks.GetQueueRequest.serialize)
        try:
            get(cloudtasks.GetQueueRequest(name=QUEUE), timeout=NO_ANSWER)
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                return NO_ANSWER
    return time.monotonic() - start


def is_closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (what it sent before closing is read and dropped)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def _trickler(sockets: list[socket.socket], data: bytes, interval: float, stop: threading.Event) -> None:
    """Sends ``data`` a byte at a time on every socket, one byte each ``interval`` seconds."""
    position = 0
    while not stop.is_set() and position < len(data):
        for sock in sockets:
            try:
                sock.send(data[position : position + 1])
            except OSError:
                pass
        position += 1
        stop.wait(interval)


def hold(mode: str, port: int, grpc_port: int | None, count: int, stop: threading.Event) -> list[socket.socket]:
    """Open the hostile connections of ``mode``; those that send go on in threads until ``stop``."""
    if mode == "grpc-silent":
        assert grpc_port is not None, "grpc modes need --grpc-port"
        return hostile_connections(grpc_port, count)
    if mode == "grpc-stalled":
        assert grpc_port is not None, "grpc modes need --grpc-port"
        return [open_calls_without_requests(grpc_port, GET_QUEUE, count)]
    sockets = hostile_connections(port, count)
    if mode == "idle":
        for sock in sockets:
            sock.send(b"G")
    elif mode == "trickle":
        threading.Thread(target=_trickler, args=(sockets, HEAD, 1.0, stop), daemon=True).start()
    else:
        for sock in sockets:
            sock.sendall(HEALTHZ_WITH_BODY)
        threading.Thread(target=_trickler, args=(sockets, b"x" * 100, 0.5, stop), daemon=True).start()
    return sockets


def run(port: int, grpc_port: int | None, mode: str, count: int, seconds: float) -> dict[str, float]:
    stop = threading.Event()
    sockets = hold(mode, port, grpc_port, count, stop)
    probes: dict[str, Callable[[], float]] = {
        "healthz": lambda: probe(port, "/healthz"),
        "api": lambda: probe(port, API),
    }
    if grpc_port is not None:
        probes["grpc"] = lambda: grpc_probe(grpc_port)
    seen: dict[str, list[float]] = {name: [] for name in probes}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, function in probes.items():
            seen[name].append(function())
        time.sleep(0.5)
    stop.set()
    closed = sum(is_closed(sock) for sock in sockets)
    for sock in sockets:
        sock.close()
    result: dict[str, float] = {}
    for name, latencies in seen.items():
        result[f"{name}_worst_s"] = max(latencies)
        result[f"{name}_median_s"] = statistics.median(latencies)
    result["probes"] = len(seen["healthz"])
    result["closed_by_server"] = closed
    return result


MODES = ("idle", "trickle", "healthz-body", "grpc-silent", "grpc-stalled")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, help="the bridge's --grpc-port: probe it too (grpc modes need it)")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    result = run(args.port, args.grpc_port, args.mode, args.connections, args.seconds)
    print(f"{args.mode} connections held: {args.connections} for {args.seconds:.0f} s")
    for key, value in result.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")


if __name__ == "__main__":
    main()
