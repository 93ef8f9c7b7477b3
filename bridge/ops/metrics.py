"""Prometheus metrics at ``/metrics``, correct under several gunicorn workers.

Counted in every worker and summed at scrape time::

    bridge_http_requests_total{method, status}        every call, HTTP or gRPC: method = Discovery
                                                      method id, route endpoint or RPC
                                                      (google.cloud.tasks.v2beta2.CloudTasks/LeaseTasks),
                                                      status = HTTP status or gRPC code name
    bridge_http_request_duration_seconds{method}      histogram
    bridge_tasks_inserted_total, bridge_tasks_leased_total, bridge_tasks_deleted_total
    bridge_lease_conflicts_total                      update/patch refused: lease lost
    bridge_tasks_dead_lettered_total                  tasks dropped after maxLeases
    bridge_backend_errors_total{operation, kind}      kind = unavailable | failed

Sampled from the backend by the worker that answers the scrape::

    bridge_backend_up                                 1 when the backend answers a ping
    bridge_queue_tasks{project, queue}                live tasks, leased or not
    bridge_queue_oldest_task_age_seconds{project, queue}
                                                      now - oldest ETA (0 when none waits)

Several workers: with ``PROMETHEUS_MULTIPROC_DIR`` set (the image sets it), the counters
live in files there and every scrape adds up all workers' files; gunicorn.conf.py
empties the folder at start and retires a dead worker's files. Without it each worker
reports only itself, which is right for one worker.

Queues sampled: those this process has served (the last `MAX_SAMPLED_QUEUES`), and for
each project it has served, every pull queue of queue.yaml. Each costs one stats call
per scrape, hence the bound; sampling stops at the first backend error.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Flask, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from backends.base import (
    Backend,
    LeaseResult,
    Queue,
)
from backends.errors import ApiError, Conflict, Duplicate, Unavailable
from backends.limits import US
from bridge.access.queues import QueueRegistry

MAX_SAMPLED_QUEUES = 50
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Requests take about a millisecond on Redis; the tail is what matters.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

if os.environ.get(MULTIPROC_ENV):
    # Every counter opens its file there when created, which is now, at import: in a
    # fresh container nothing has made the folder yet.
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

REQUESTS = Counter("bridge_http_requests", "HTTP requests answered, by method id and status", ["method", "status"])
LATENCY = Histogram(
    "bridge_http_request_duration_seconds", "Time to answer a request", ["method"], buckets=LATENCY_BUCKETS
)
INSERTED = Counter("bridge_tasks_inserted", "Tasks inserted")
LEASED = Counter("bridge_tasks_leased", "Tasks handed out by lease calls")
DELETED = Counter("bridge_tasks_deleted", "Tasks deleted")
LEASE_CONFLICTS = Counter("bridge_lease_conflicts", "Lease renewals refused because the lease was lost")
DEAD_LETTERED = Counter("bridge_tasks_dead_lettered", "Tasks dropped after maxLeases leases")
BACKEND_ERRORS = Counter("bridge_backend_errors", "Backend calls that failed", ["operation", "kind"])

T = TypeVar("T")
log = logging.getLogger("bridge.dead_letters")


class BackendMeter:
    """What the backend's calls did, counted, and the queues they named, remembered.

    Called by the gate's backend hook (`bridge.gate.backend`) around every backend call
    of every front: `remember` before, the verb's entry of `effects` (if any) after a
    success, `failed` after a failure.
    """

    def __init__(self) -> None:
        self._seen: OrderedDict[Queue, None] = OrderedDict()
        self._lock = threading.Lock()
        #: What a verb's success counts, by verb: called with the queue and the result.
        self.effects: dict[str, Callable[[Queue | None, Any], None]] = {
            verb: functools.partial(effect, self) for verb, effect in _EFFECTS.items()
        }

    def seen_queues(self) -> list[Queue]:
        with self._lock:
            return list(self._seen)

    def remember(self, queue: Queue) -> None:
        with self._lock:
            self._seen[queue] = None
            self._seen.move_to_end(queue)
            if len(self._seen) > MAX_SAMPLED_QUEUES:
                self._seen.popitem(last=False)

    def failed(self, verb: str, exc: BaseException) -> None:
        if isinstance(exc, Unavailable):
            BACKEND_ERRORS.labels(verb, "unavailable").inc()
        elif isinstance(exc, Conflict):
            if verb == "modify_lease" and not isinstance(exc, Duplicate):
                LEASE_CONFLICTS.inc()
        elif not isinstance(exc, ApiError) or exc.status >= 500:
            BACKEND_ERRORS.labels(verb, "failed").inc()

    def _forget(self, queue: Queue | None, result: object) -> None:
        with self._lock:
            self._seen.pop(queue, None)  # type: ignore[arg-type]


def _leased(meter: BackendMeter, queue: Queue | None, tasks: LeaseResult) -> None:
    if tasks:
        LEASED.inc(len(tasks))
    if tasks.dropped:
        assert queue is not None
        DEAD_LETTERED.inc(len(tasks.dropped))
        for letter in tasks.dropped:
            log.warning(
                "task %s of queue %s/%s dropped after %d leases (maxLeases)",
                letter.id,
                queue.project,
                queue.name,
                letter.leases,
                extra={"project": queue.project, "queue": queue.name, "task": letter.id, "leases": letter.leases},
            )


#: What a verb's success counts, by verb.
_EFFECTS: dict[str, Callable[[BackendMeter, Queue | None, Any], None]] = {
    "insert": lambda meter, queue, task: INSERTED.inc(),
    "delete": lambda meter, queue, none: DELETED.inc(),
    "purge_queue": lambda meter, queue, count: DELETED.inc(count or 0),
    "lease": _leased,
    "delete_queue": BackendMeter._forget,
}


def sampled_queues(meter: BackendMeter, queues: QueueRegistry) -> list[Queue]:
    """The queues this process served (the latest first), then for each of their projects
    every pull queue queue.yaml declares; at most `MAX_SAMPLED_QUEUES`."""
    seen = meter.seen_queues()
    projects = dict.fromkeys(queue.project for queue in reversed(seen))
    declared = [Queue(project, c.name, c.max_leases) for project in projects for c in queues.declared()]
    return list(dict.fromkeys([*reversed(seen), *declared]))[:MAX_SAMPLED_QUEUES]


class QueueCollector:
    """Samples queue depth and age from the backend when Prometheus scrapes."""

    def __init__(self, backend: Backend, meter: BackendMeter, queues: QueueRegistry) -> None:
        #: The backend itself, not the gate's view of it: scrapes are not counted.
        self.backend = backend
        self.meter = meter
        self.queues = queues

    def sampled(self) -> list[Queue]:
        return sampled_queues(self.meter, self.queues)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("bridge_backend_up", "1 when the backend answers, else 0")
        depth = GaugeMetricFamily("bridge_queue_tasks", "Live tasks in the queue", labels=["project", "queue"])
        age = GaugeMetricFamily(
            "bridge_queue_oldest_task_age_seconds",
            "Seconds since the oldest task's ETA (how long it has been waiting); 0 when none waits",
            labels=["project", "queue"],
        )
        try:
            self.backend.ping()
            now_us = time.time() * US
            # A backend without stats (Pub/Sub) still answers: it has no depth to show.
            sampled = self.sampled() if "stats" in self.backend.supports else []
            for queue in sampled:
                stats = self.backend.queue_info(queue, with_stats=True).stats
                if stats is None:
                    continue
                depth.add_metric([queue.project, queue.name], stats.total_tasks)
                oldest = stats.oldest_eta_us
                waited = max(0.0, (now_us - oldest) / US) if oldest else 0.0
                age.add_metric([queue.project, queue.name], waited)
        except ApiError:
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
        yield from (up, depth, age)


def _counters() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@functools.cache
def _request_series(method: str, status: int | str) -> tuple[Any, Any]:
    """The counter and histogram children of one method and status: ``labels()`` takes a
    lock and checks its arguments on every call, and the set of pairs is small."""
    return REQUESTS.labels(method, str(status)), LATENCY.labels(method)


def count_request(method: str, status: int | str, started: float) -> None:
    """Count one answered call (HTTP status, or gRPC code name), and its duration since
    ``started`` (perf_counter)."""
    count, latency = _request_series(method, status)
    count.inc()
    latency.observe(time.perf_counter() - started)


def register(
    app: Flask,
    backend: Backend,
    meter: BackendMeter,
    queues: QueueRegistry,
    guard: Callable[[], object] | None = None,
) -> None:
    """Count the app's requests and serve ``/metrics``; ``backend`` is the one sampled
    (not the gate's view of it), ``guard`` raises for callers it refuses."""
    sampling = CollectorRegistry()
    sampling.register(QueueCollector(backend, meter, queues))

    def metrics() -> Response:
        if guard is not None:
            guard()
        return Response(_counters() + generate_latest(sampling), mimetype=None, content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics)
