"""The HTTP measurements of (a), (b) and (c): queue states, requests, one repetition.

Steady state: every lease during measurement uses ``leaseSecs=0``, so each leased task
is back in its queue at once (at the end of the available tasks, its ETA being now) and
every queue keeps its size and its leased part for the whole run, however many requests
a run makes. The cost of such a lease is that of any lease: the same script rewrites the
task and moves it in the index. (a)'s 50,000 oldest tasks are leased for a day before
the run and stay leased. Inserts (b) grow their own queue, which costs O(log N) per
insert. Deletes (b) each remove a task inserted for them beforehand, so no delete is a
cheaper 404; the non-2xx count of every run is checked to prove it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from backends.base import NewTask
from backends.redis.backend import RedisBackend
from bench.fill import PROJECT, fill, lease_oldest, numbered, queue
from bench.load import LatencyResult, LoadResult, Request, alternate_latency, merged, run_wrk
from bench.plan import (
    BULK_NUM_TASKS,
    DELETE_HEADROOM,
    LATENCY_NUM_TASKS,
    LOAD_THREADS,
    LONG_LEASE_SECONDS,
    PAYLOAD_BYTES,
    SLICE_SECONDS,
    Plan,
)
from bench.services import Service

BIG = "lease-big"
SMALL = "lease-small"
LEASE_ONE = "lease-one"
LEASE_BULK = "lease-bulk"
INSERT = "insert"
DELETE = "delete"


def tasks_path(queue_name: str) -> str:
    return f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{queue_name}/tasks"


def lease_request(queue_name: str, num_tasks: int) -> Request:
    return Request("POST", f"{tasks_path(queue_name)}/lease?numTasks={num_tasks}&leaseSecs=0")


REFERENCE = Request("POST", "/incr")
INSERT_REQUEST = Request(
    "POST",
    tasks_path(INSERT),
    json.dumps({"payloadBase64": base64.urlsafe_b64encode(os.urandom(PAYLOAD_BYTES)).decode()}),
)
LEASE_ONE_REQUEST = lease_request(LEASE_ONE, 1)
LEASE_BULK_REQUEST = lease_request(LEASE_BULK, BULK_NUM_TASKS)
#: (a): the small queue first, then the big one.
LATENCY_REQUESTS = (lease_request(SMALL, LATENCY_NUM_TASKS), lease_request(BIG, LATENCY_NUM_TASKS))


def delete_request(label: str) -> Request:
    """Deletes of ``<label>-<thread>-<n>``, which prepare_deletes inserted; load.lua
    fills in thread and n, counting from 1 in every wrk run."""
    return Request("DELETE", f"{tasks_path(DELETE)}/{label}-{{n}}")


@dataclass(frozen=True)
class Servers:
    """Everything one HTTP run talks to."""

    redis: Service
    bridge: Service
    reference: Service
    #: The bridge's backend, in this process, on the same Redis: fills queues.
    backend: RedisBackend


def prepare_queues(backend: RedisBackend, plan: Plan) -> None:
    """(a)'s big queue with its oldest part leased, (a)'s small queue, (b)/(c)'s lease queues."""
    fill(backend, queue(BIG), numbered("t", plan.big_queue_tasks, PAYLOAD_BYTES))
    lease_oldest(backend, queue(BIG), plan.big_queue_leased, LONG_LEASE_SECONDS)
    fill(backend, queue(SMALL), numbered("t", plan.small_queue_tasks, PAYLOAD_BYTES))
    fill(backend, queue(LEASE_ONE), numbered("t", plan.lease_queue_tasks, PAYLOAD_BYTES))
    fill(backend, queue(LEASE_BULK), numbered("t", plan.lease_queue_tasks, PAYLOAD_BYTES))


def prepare_deletes(backend: RedisBackend, label: str, expected_per_second: float, seconds: int) -> None:
    """Insert the tasks one delete run will name: each wrk thread counts its own ids and
    may make all the run's requests, so each gets the whole budget."""
    budget = math.ceil(expected_per_second * seconds * DELETE_HEADROOM)
    for thread in range(1, LOAD_THREADS + 1):
        ids = (f"{label}-{thread}-{n}" for n in range(1, budget + 1))
        fill(backend, queue(DELETE), (NewTask(task_id, os.urandom(PAYLOAD_BYTES)) for task_id in ids))


def load(servers: Servers, target: Service, request: Request, seconds: int) -> LoadResult:
    """A wrk run on ``target``, with the CPU that it and redis-server spent meanwhile.

    When other users load the machine, a ratio of CPU per request moves less than a
    ratio of requests per second, so it cross-checks each throughput ratio.
    """
    server_before, redis_before = target.cpu_seconds(), servers.redis.cpu_seconds()
    result = run_wrk(target.port, request, seconds)
    return dataclasses.replace(
        result,
        server_cpu_seconds=target.cpu_seconds() - server_before,
        redis_cpu_seconds=servers.redis.cpu_seconds() - redis_before,
    )


@dataclass(frozen=True)
class Paired:
    """A (b) operation of the bridge and the reference, measured in alternating slices."""

    bridge: LoadResult
    reference: LoadResult

    @property
    def ratio(self) -> float:
        return self.bridge.per_second / self.reference.per_second

    @property
    def cpu_ratio(self) -> float:
        """Reference CPU per request ÷ the bridge's: above 1 when the bridge costs less."""
        return self.reference.cpu_us_per_request / self.bridge.cpu_us_per_request


def paired(servers: Servers, request_of_slice: Callable[[int], Request], plan: Plan) -> Paired:
    """``plan.slices`` one-second runs of each side, in the order ABBA ABBA…, so that a
    change in the machine's load, whether a step or a drift, falls on both sides alike."""
    bridge: list[LoadResult] = []
    reference: list[LoadResult] = []
    for n in range(plan.slices):
        for side in ("reference", "bridge") if n % 2 == 0 else ("bridge", "reference"):
            if side == "reference":
                reference.append(load(servers, servers.reference, REFERENCE, SLICE_SECONDS))
            else:
                bridge.append(load(servers, servers.bridge, request_of_slice(n), SLICE_SECONDS))
    return Paired(merged(bridge), merged(reference))


@dataclass(frozen=True)
class Repetition:
    """Raw results of one repetition of (a), (b) and (c)."""

    insert: Paired
    lease: Paired
    delete: Paired
    bulk_lease: LoadResult
    #: (a): medians of the small queue, then the big one.
    latency: LatencyResult

    @property
    def paired(self) -> tuple[Paired, ...]:
        return (self.insert, self.lease, self.delete)

    @property
    def reference_per_second(self) -> float:
        return merged([pair.reference for pair in self.paired]).per_second

    @property
    def load_runs(self) -> tuple[LoadResult, ...]:
        return (*(run for pair in self.paired for run in (pair.bridge, pair.reference)), self.bulk_lease)


def run_repetition(servers: Servers, plan: Plan, label: str) -> Repetition:
    """One of each measurement. The deletes of the delete slices are inserted first, as
    many per slice as the fastest reference slice so far could delete, with headroom:
    the bridge does not outrun the reference."""
    insert = paired(servers, lambda n: INSERT_REQUEST, plan)
    lease = paired(servers, lambda n: LEASE_ONE_REQUEST, plan)
    fastest = max(pair.reference.per_second for pair in (insert, lease))
    for n in range(plan.slices):
        prepare_deletes(servers.backend, f"{label}-s{n}", fastest, SLICE_SECONDS)
    delete = paired(servers, lambda n: delete_request(f"{label}-s{n}"), plan)
    bulk_lease = load(servers, servers.bridge, LEASE_BULK_REQUEST, plan.load_seconds)
    latency = alternate_latency(servers.bridge.port, LATENCY_REQUESTS, plan.latency_requests)
    return Repetition(insert, lease, delete, bulk_lease, latency)


def warm_up(servers: Servers, plan: Plan) -> None:
    """Load every endpoint, unrecorded, and stop at once if any answers errors."""
    seconds = plan.warmup_seconds
    if not seconds:
        return
    runs = [run_wrk(servers.reference.port, REFERENCE, seconds)]
    for request in (INSERT_REQUEST, LEASE_ONE_REQUEST):
        runs.append(run_wrk(servers.bridge.port, request, seconds))
    # The first run of a cold server is the slowest: budget the deletes on the fastest.
    prepare_deletes(servers.backend, "warmup", max(run.per_second for run in runs), seconds)
    for request in (delete_request("warmup"), LEASE_BULK_REQUEST):
        runs.append(run_wrk(servers.bridge.port, request, seconds))
    alternate_latency(servers.bridge.port, LATENCY_REQUESTS, max(1, plan.latency_requests // 10))
    broken = [run for run in runs if not run.clean]
    if broken:
        raise RuntimeError(f"warm-up runs failed (non-2xx or socket errors): {broken}")
