"""Load: throughput runs with wrk, and sequential latency samples over one connection.

Throughput comes from wrk (a second process, in C, so the load generator costs the
servers little CPU) driven by load.lua, which also counts non-2xx answers and returned
tasks so that a run that measured errors or empty leases can be recognised.

Latency comes from a plain keep-alive connection here instead, because wrk "corrects"
its latency histogram for coordinated omission with synthetic samples, which moves a
one-connection median; the client's own cost is the same for both queues compared.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.plan import LOAD_CONNECTIONS, LOAD_THREADS
from bench.services import require

SCRIPT = Path(__file__).with_name("load.lua")
_RESULT_PREFIX = "BENCH_RESULT "
#: wrk's per-request timeout; a timed-out request counts as a socket error.
REQUEST_TIMEOUT = "10s"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str = ""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    #: Tasks found in the responses ('"id":' occurrences).
    items: int
    #: CPU time that the server under load (gunicorn master and workers) and that
    #: redis-server used during the run.
    server_cpu_seconds: float = 0.0
    redis_cpu_seconds: float = 0.0
    #: wrk runs summed into this result.
    runs: int = 1

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        """Server and Redis CPU per request: what a request costs the machine's cores."""
        return self.server_us_per_request + self.redis_us_per_request

    @property
    def server_us_per_request(self) -> float:
        return self.server_cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    @property
    def redis_us_per_request(self) -> float:
        return self.redis_cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    @property
    def clean(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0 and self.requests > 0


def run_wrk(port: int, request: Request, seconds: int, connections: int = LOAD_CONNECTIONS) -> LoadResult:
    """``connections`` connections sending ``request`` back to back for ``seconds``."""
    wrk = require("wrk", "install it (apt-get install wrk)")
    command = [wrk, "-t", str(min(LOAD_THREADS, connections)), "-c", str(connections), "-d", f"{seconds}s"]
    command += ["--timeout", REQUEST_TIMEOUT, "-s", str(SCRIPT), f"http://127.0.0.1:{port}"]
    command += ["--", request.method, request.path, request.body]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX):
            raw = json.loads(line.removeprefix(_RESULT_PREFIX))
            return LoadResult(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                non_2xx=raw["non_2xx"],
                socket_errors=raw["socket_errors"],
                items=raw["items"],
            )
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def merged(results: list[LoadResult]) -> LoadResult:
    """Several runs of one request as one: counts, times and CPU summed."""
    return LoadResult(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        items=sum(r.items for r in results),
        server_cpu_seconds=sum(r.server_cpu_seconds for r in results),
        redis_cpu_seconds=sum(r.redis_cpu_seconds for r in results),
        runs=sum(r.runs for r in results),
    )


@dataclass(frozen=True)
class LatencyResult:
    """Medians of sequential requests, in microseconds, per request kind."""

    medians_us: tuple[float, ...]
    samples: int
    #: Answers that were not 2xx or carried no task.
    bad: int


def alternate_latency(port: int, requests: tuple[Request, ...], rounds: int) -> LatencyResult:
    """Send each request in turn, ``rounds`` times, over one keep-alive connection.

    Alternating request by request puts the kinds compared side by side in time, so that
    load from other users of the machine falls on both alike.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port)
    samples: list[list[int]] = [[] for _ in requests]
    bad = 0
    try:
        for _ in range(rounds):
            for kind, request in enumerate(requests):
                started = time.perf_counter_ns()
                connection.request(request.method, request.path, body=request.body or None)
                response = connection.getresponse()
                body = response.read()
                samples[kind].append(time.perf_counter_ns() - started)
                if not 200 <= response.status < 300 or b'"id":' not in body:
                    bad += 1
    finally:
        connection.close()
    return LatencyResult(tuple(statistics.median(s) / 1000 for s in samples), rounds, bad)
