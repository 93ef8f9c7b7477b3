"""LeaseTasks over gRPC against v1 lease over HTTP, side by side on one bridge.

    python bench/grpc_lease.py            # about a minute; needs redis-server on PATH
    python bench/grpc_lease.py --calls 5 --repetitions 1   # a smoke run

It starts its own redis-server and one bridge on it, as users start it
(``python -m bridge serve --workers 2 --threads 8 --grpc-port G``), fills one queue,
then drains it from one worker-like client per side, in alternating slices of a fixed
number of calls (ABBA per repetition, so a burst of someone else's load falls on both):

- v2beta2: the official google-cloud-tasks client over gRPC, ``LeaseTasks`` with
  ``max_tasks=100``, FULL view (payloads, as v1 returns them);
- v1beta2: the official Google API client built from the served Discovery document,
  ``tasks.lease`` with ``numTasks=100``.

It prints tasks leased per second for each side in each repetition, the medians, and
the ratio of the medians (gRPC ÷ HTTP). Every lease must return 100 tasks; a short one
stops the run, since it would measure an emptying queue.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402
from google.cloud import tasks_v2beta2 as ct  # noqa: E402
from google.cloud.tasks_v2beta2.services.cloud_tasks.transports import CloudTasksGrpcTransport  # noqa: E402
from google.protobuf import duration_pb2  # noqa: E402

from backends.redis.backend import RedisBackend  # noqa: E402
from bench.fill import fill, numbered, queue  # noqa: E402
from bench.plan import GUNICORN_THREADS, GUNICORN_WORKERS  # noqa: E402
from bench.services import Service, _answers_http, _wait, free_port, redis_url, start_redis  # noqa: E402
from bridge.client import connect  # noqa: E402

BATCH = 100
LEASE_SECONDS = 3600
PAYLOAD_BYTES = 100
QUEUE = "grpc-lease"


def start_bridge_with_grpc(backend_url: str, folder: Path) -> tuple[Service, int]:
    port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "bridge", "serve", "--backend", backend_url, "--port", str(port)]
    command += ["--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS), "--grpc-port", str(grpc_port)]
    service = Service(f"bridge :{port} (gRPC :{grpc_port})", command, port, folder / f"bridge-{port}.log")
    _wait(service, lambda: _answers_http(port))
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    channel.close()
    return service, grpc_port


def rate(lease: Callable[[], int], calls: int) -> float:
    """Tasks per second leased by ``calls`` calls of ``lease`` back to back."""
    started = time.perf_counter()
    for _ in range(calls):
        got = lease()
        if got != BATCH:
            raise RuntimeError(f"a lease returned {got} tasks instead of {BATCH}: the fill was too small")
    return calls * BATCH / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="lease calls in each slice (default 100)")
    parser.add_argument("--repetitions", type=int, default=3, help="repetitions, medians taken (default 3)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grpc-") as scratch:
        folder = Path(scratch)
        redis_server = start_redis(folder)
        bridge: Service | None = None
        try:
            url = redis_url(redis_server)
            backend = RedisBackend.from_url(url)
            # Four slices a repetition, and the two warm-up calls.
            total = (4 * options.repetitions * options.calls + 2) * BATCH
            fill(backend, queue(QUEUE), numbered("t", total, PAYLOAD_BYTES))
            backend.close()
            bridge, grpc_port = start_bridge_with_grpc(url, folder)
            return measure(bridge.port, grpc_port, options.calls, options.repetitions)
        finally:
            if bridge is not None:
                bridge.stop()
            redis_server.stop()


def measure(port: int, grpc_port: int, calls: int, repetitions: int) -> int:
    v1 = connect(f"http://127.0.0.1:{port}")
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[("grpc.max_receive_message_length", -1)])
    v2 = ct.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    request = ct.LeaseTasksRequest(
        parent=f"projects/bench/locations/local/queues/{QUEUE}",
        max_tasks=BATCH,
        lease_duration=duration_pb2.Duration(seconds=LEASE_SECONDS),
        response_view=ct.Task.View.FULL,
    )
    lease_call = v1.tasks().lease(project="bench", taskqueue=QUEUE, numTasks=BATCH, leaseSecs=LEASE_SECONDS)

    def lease_grpc() -> int:
        return len(v2.lease_tasks(request=request, retry=None).tasks)

    def lease_http() -> int:
        return len(lease_call.execute().get("items", []))

    lease_grpc(), lease_http()  # connections open, first-call costs paid
    grpc_rates, http_rates = [], []
    print(f"tasks leased per second, {BATCH} per call, one client per side, slices of {calls} calls (ABBA)")
    for number in range(1, repetitions + 1):
        a1, b1, b2, a2 = (
            rate(lease_grpc, calls),
            rate(lease_http, calls),
            rate(lease_http, calls),
            rate(lease_grpc, calls),
        )
        grpc_rates.append((a1 + a2) / 2)
        http_rates.append((b1 + b2) / 2)
        print(f"  repetition {number}: gRPC LeaseTasks {grpc_rates[-1]:8.0f}   HTTP v1 lease {http_rates[-1]:8.0f}")
    grpc_median, http_median = statistics.median(grpc_rates), statistics.median(http_rates)
    print(f"median: gRPC LeaseTasks {grpc_median:.0f} tasks/s, HTTP v1 lease {http_median:.0f} tasks/s")
    print(f"ratio gRPC / HTTP (medians of {repetitions}): {grpc_median / http_median:.3f}")
    v2.transport.close()  # type: ignore[no-untyped-call]  # google-api-core leaves it unannotated
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
