"""Correctness under concurrency and crashes, through gunicorn on a private Redis.

    python bench/consistency.py leases [--seconds 30] [--leasers 16]
    python bench/consistency.py durability [--kills 3]

``leases``: one producer inserts while 16 leasers lease with 1-2 s leases and, per
task, delete it, renew it with its token, release it (newLeaseSeconds=0) or let it
expire. Every lease is recorded as an interval of server time (grant to expiry, cut at
a release), then checked: two leases of one task that overlap (**overlapping**), an
acknowledged task that is neither deleted nor still there at the end (**lost**), a task
leased after its delete succeeded (**resurrected**).

``durability``: Redis with ``appendonly yes`` and ``appendfsync always``; eight
threads insert through the bridge, Redis is killed with SIGKILL mid-load and started
again on the same files, and every insert the bridge acknowledged (200) must be there.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.services import Service, free_port, redis_url, start_bridge, start_redis  # noqa: E402

BASE = "/taskqueue/v1beta2/projects/s~consistency/taskqueues/q"
US = 1_000_000


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        try:
            self.connection.request(method, BASE + path, body=data, headers={"Content-Type": "application/json"})
            response = self.connection.getresponse()
            raw = response.read()
        except OSError:
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return 0, None
        return response.status, json.loads(raw) if raw else None


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    inserted: set[str] = field(default_factory=set)
    #: task -> [grant µs, end µs] of each lease, in server time
    leases: dict[str, list[list[int]]] = field(default_factory=lambda: defaultdict(list))
    #: task -> client time (µs) when its delete was acknowledged
    deleted: dict[str, int] = field(default_factory=dict)
    requests: int = 0


def leaser(port: int, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    client = Client(port)
    while not stop.is_set():
        secs = rng.choice((1, 2))
        status, body = client.call("POST", f"/tasks/lease?numTasks=5&leaseSecs={secs}")
        with ledger.lock:
            ledger.requests += 1
        if status != 200 or not isinstance(body, dict):
            continue
        for task in body.get("items", []):
            expiry = int(task["leaseTimestamp"])
            interval = [expiry - secs * US, expiry]
            with ledger.lock:
                ledger.leases[task["id"]].append(interval)
            action = rng.random()
            path = f"/tasks/{task['id']}"
            token = {"leaseTimestamp": task["leaseTimestamp"]}
            if action < 0.5:
                status, _ = client.call("DELETE", path)
                if status == 204:
                    with ledger.lock:
                        ledger.deleted[task["id"]] = int(time.time() * US)
            elif action < 0.7:
                status, renewed = client.call("POST", f"{path}?newLeaseSeconds=1", token)
                if status == 200 and isinstance(renewed, dict):
                    with ledger.lock:
                        interval[1] = int(renewed["leaseTimestamp"])
            elif action < 0.85:
                status, released = client.call("POST", f"{path}?newLeaseSeconds=0", token)
                if status == 200 and isinstance(released, dict):
                    with ledger.lock:
                        interval[1] = int(released["leaseTimestamp"])
            with ledger.lock:
                ledger.requests += 1


def producer(port: int, ledger: Ledger, stop: threading.Event) -> None:
    client = Client(port)
    number = 0
    while not stop.is_set():
        name = f"t{number:07d}"
        number += 1
        status, _ = client.call("POST", "/tasks", {"id": name})
        if status == 200:
            with ledger.lock:
                ledger.inserted.add(name)
                ledger.requests += 1
        if number % 50 == 0:
            time.sleep(0.05)


def check_leases(port: int, seconds: float, leasers: int) -> dict[str, int]:
    ledger = Ledger()
    stop = threading.Event()
    threads = [threading.Thread(target=producer, args=(port, ledger, stop))]
    threads += [threading.Thread(target=leaser, args=(port, ledger, stop, seed)) for seed in range(leasers)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    overlapping = 0
    for intervals in ledger.leases.values():
        ordered = sorted(intervals)
        overlapping += sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1])
    resurrected = sum(
        1 for task, at in ledger.deleted.items() for grant, _ in ledger.leases[task] if grant > at + 50_000
    )
    client = Client(port)
    lost = 0
    for task in ledger.inserted - set(ledger.deleted):
        status, _ = client.call("GET", f"/tasks/{task}")
        lost += status != 200
    gone = sum(client.call("GET", f"/tasks/{task}")[0] != 404 for task in ledger.deleted)
    return {
        "requests": ledger.requests,
        "inserted": len(ledger.inserted),
        "leases": sum(len(v) for v in ledger.leases.values()),
        "deleted": len(ledger.deleted),
        "overlapping": overlapping,
        "lost": lost,
        "resurrected": resurrected + gone,
    }


def start_durable_redis(folder: Path, port: int) -> Service:
    return start_redis(folder, "--appendonly", "yes", "--appendfsync", "always", port=port)


def check_durability(folder: Path, kills: int) -> dict[str, int]:
    port = free_port()
    store = start_durable_redis(folder, port)
    bridge = start_bridge(redis_url(store), folder)
    acknowledged: list[str] = []
    lock = threading.Lock()
    try:
        for kill in range(kills):
            stop = threading.Event()

            def insert(worker: int, stop: threading.Event = stop, kill: int = kill) -> None:
                client = Client(bridge.port)
                number = 0
                while not stop.is_set():
                    name = f"k{kill}w{worker}n{number}"
                    number += 1
                    if client.call("POST", "/tasks", {"id": name})[0] == 200:
                        with lock:
                            acknowledged.append(name)

            threads = [threading.Thread(target=insert, args=(worker,)) for worker in range(8)]
            for thread in threads:
                thread.start()
            time.sleep(3)
            store.process.send_signal(signal.SIGKILL)
            store.process.wait()
            time.sleep(0.5)
            stop.set()
            for thread in threads:
                thread.join()
            store = start_durable_redis(folder, port)
        client = Client(bridge.port)
        lost = sum(client.call("GET", f"/tasks/{name}")[0] != 200 for name in acknowledged)
        return {"kills": kills, "acknowledged": len(acknowledged), "lost": lost}
    finally:
        bridge.stop()
        store.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=("leases", "durability"))
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--leasers", type=int, default=16)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consistency-") as scratch:
        folder = Path(scratch)
        if args.check == "durability":
            result = check_durability(folder, args.kills)
        else:
            store = start_redis(folder)
            bridge = start_bridge(redis_url(store), folder)
            try:
                result = check_leases(bridge.port, args.seconds, args.leasers)
            finally:
                bridge.stop()
                store.stop()
    print(" ".join(f"{key}={value}" for key, value in result.items()))
    if any(result.get(key) for key in ("overlapping", "lost", "resurrected")):
        sys.exit(1)


if __name__ == "__main__":
    main()
