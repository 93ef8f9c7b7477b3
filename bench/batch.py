"""Batch requests against single calls: tasks deleted per second, side by side in one run.

    python bench/batch.py            # 3 repetitions of 1,000 deletes each way, about half a minute
    python bench/batch.py --tasks 200

It starts its own redis-server and the bridge on it as users start it (``python -m
bridge serve``, gunicorn), both on free ports, and stops them afterwards. In each
repetition Google's client deletes the same number of tasks twice: one ``tasks.delete``
call at a time, then in batches of 100 (``new_batch_http_request()``); then a bare HTTP
client (one keep-alive connection, bodies written once beforehand) does the same, which
shows the bridge's own share without the client's. Each repetition gives the ratio of
the two rates; the report is their median, because the machine is shared. A deletion
that fails stops the run.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.services import redis_url, start_bridge, start_redis
from bridge.client import connect

PROJECT = "s~bench"
QUEUE = "batch-bench"
BATCH_SIZE = 100
REPETITIONS = 3
DEFAULT_TASKS = 1000


def _in_batches(api: Any, calls: Iterable[Any]) -> None:
    failures: list[str] = []

    def answered(request_id: str, response: Any, exception: Exception | None) -> None:
        if exception is not None:
            failures.append(f"{request_id}: {exception}")

    pending = list(calls)
    for start in range(0, len(pending), BATCH_SIZE):
        batch = api.new_batch_http_request(callback=answered)
        for call in pending[start : start + BATCH_SIZE]:
            batch.add(call)
        batch.execute()
    if failures:
        raise SystemExit(f"{len(failures)} calls failed, e.g. {failures[0]}")


def _fill(api: Any, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{number}" for number in range(count)]
    tasks = api.tasks()
    _in_batches(api, (tasks.insert(project=PROJECT, taskqueue=QUEUE, body={"id": name}) for name in names))
    return names


def _rate(count: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def measure(api: Any, count: int, repetition: int) -> tuple[float, float]:
    """Tasks deleted per second: one call each, then batches of `BATCH_SIZE`."""
    tasks = api.tasks()
    singles = _fill(api, f"single{repetition}", count)
    batched = _fill(api, f"batched{repetition}", count)

    def one_by_one() -> None:
        for name in singles:
            tasks.delete(project=PROJECT, taskqueue=QUEUE, task=name).execute()

    def in_batches() -> None:
        _in_batches(api, (tasks.delete(project=PROJECT, taskqueue=QUEUE, task=name) for name in batched))

    return _rate(count, one_by_one), _rate(count, in_batches)


TASKS_PATH = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}/tasks"


def _batch_body(names: list[str]) -> bytes:
    parts = [
        f"--b\r\nContent-Type: application/http\r\nContent-ID: <{name}>\r\n\r\n"
        f"DELETE {TASKS_PATH}/{name} HTTP/1.1\r\n\r\n\r\n"
        for name in names
    ]
    return ("".join(parts) + "--b--\r\n").encode()


def measure_bare(api: Any, port: int, count: int, repetition: int) -> tuple[float, float]:
    """The same with a bare HTTP client: the bridge's side of the ratio."""
    singles = _fill(api, f"bare-single{repetition}", count)
    batched = _fill(api, f"bare-batched{repetition}", count)
    bodies = [_batch_body(batched[start : start + BATCH_SIZE]) for start in range(0, count, BATCH_SIZE)]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def exchange(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {data[:200]!r}")
        return data

    def one_by_one() -> None:
        for name in singles:
            exchange("DELETE", f"{TASKS_PATH}/{name}")

    def in_batches() -> None:
        for body in bodies:
            answer = exchange("POST", "/batch", body, {"Content-Type": "multipart/mixed; boundary=b"})
            if answer.count(b"HTTP/1.1 204 ") != body.count(b"DELETE "):
                raise SystemExit(f"a batch part failed: {answer[:300]!r}")

    try:
        return _rate(count, one_by_one), _rate(count, in_batches)
    finally:
        connection.close()


def _report(label: str, results: list[tuple[float, float]]) -> None:
    ratios = [batched / single for single, batched in results]
    for number, ((single, batched), ratio) in enumerate(zip(results, ratios, strict=True), 1):
        rates = f"single {single:6.0f}/s  batches of {BATCH_SIZE} {batched:6.0f}/s"
        print(f"  {label} {number}: {rates}  ratio {ratio:4.1f}")
    median = statistics.median(ratios)
    print(f"{label}: deletes per second, batches of {BATCH_SIZE} / single calls: median {median:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, help="tasks deleted each way per repetition")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        folder = Path(scratch)
        redis = start_redis(folder)
        try:
            bridge = start_bridge(redis_url(redis), folder)
            try:
                api = connect(f"http://127.0.0.1:{bridge.port}")
                client, bare = [], []
                for repetition in range(REPETITIONS):
                    client.append(measure(api, options.tasks, repetition))
                    bare.append(measure_bare(api, bridge.port, options.tasks, repetition))
            finally:
                bridge.stop()
        finally:
            redis.stop()
    print(f"{options.tasks} tasks deleted each way per repetition, {REPETITIONS} repetitions")
    _report("Google's client", client)
    _report("bare HTTP", bare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
