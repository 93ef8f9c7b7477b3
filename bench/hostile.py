"""Hostile clients against a running bridge: idle and trickling connections.

    python bench/hostile.py idle --port 8080 --connections 256 --seconds 60
    python bench/hostile.py trickle --port 8080 --connections 16 --seconds 30

Opens the connections (idle ones send the single byte ``G``; trickling ones send one
byte of a request head per second), then probes ``/healthz`` and a queue's
``taskqueues.get`` from a well-behaved client every half second while they are held,
and prints the worst and median latency of each, and how many of the hostile
connections the server closed on its own.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import threading
import time

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096 + b"\r\n\r\n"
API = "/taskqueue/v1beta2/projects/s~hostile/taskqueues/probe"


def hostile_connections(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sockets.append(sock)
    return sockets


def probe(port: int, path: str) -> float:
    """Seconds one fresh connection takes to get an answer (30 if none)."""
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
    except OSError:
        return 30.0
    finally:
        connection.close()
    return time.monotonic() - start


def is_closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def run(port: int, mode: str, count: int, seconds: float) -> dict[str, float]:
    sockets = hostile_connections(port, count)
    stop = threading.Event()

    def trickle() -> None:
        position = 0
        while not stop.is_set() and position < len(HEAD):
            for sock in sockets:
                try:
                    sock.send(HEAD[position : position + 1])
                except OSError:
                    pass
            position += 1
            stop.wait(1.0)

    if mode == "idle":
        for sock in sockets:
            sock.send(b"G")
    else:
        threading.Thread(target=trickle, daemon=True).start()
    healthz: list[float] = []
    api: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        healthz.append(probe(port, "/healthz"))
        api.append(probe(port, API))
        time.sleep(0.5)
    stop.set()
    closed = sum(is_closed(sock) for sock in sockets)
    for sock in sockets:
        sock.close()
    return {
        "healthz_worst_s": max(healthz),
        "healthz_median_s": statistics.median(healthz),
        "api_worst_s": max(api),
        "api_median_s": statistics.median(api),
        "probes": len(healthz),
        "closed_by_server": closed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("idle", "trickle"))
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    result = run(args.port, args.mode, args.connections, args.seconds)
    print(f"{args.mode} connections held: {args.connections} for {args.seconds:.0f} s")
    for key, value in result.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")


if __name__ == "__main__":
    main()
