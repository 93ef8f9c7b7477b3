"""Queue states for the measurements, written straight into Redis by the backend's scripts.

Inserting through the API costs a round trip per task (100,000 of them take half a
minute here). The same insert script that the API runs, sent in pipelines, leaves the
same keys and values in a few seconds; every fill then checks the queue's task count
through the backend's own API, so a change to the script's arguments fails loudly here
instead of measuring a wrong state. Leases go through the backend's ``lease`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from backends.base import LeaseRequest, NewTask, Queue
from backends.limits import MAX_ETA_AHEAD_US
from backends.redis.backend import SOURCES, RedisBackend
from bench.plan import FILL_BATCH

PROJECT = "bench"


def queue(name: str) -> Queue:
    return Queue(PROJECT, name)


def numbered(prefix: str, count: int, payload_bytes: int, start: int = 1) -> Iterator[NewTask]:
    """Tasks named ``<prefix><n>`` with zero-padded n, so that name order is insert order."""
    for n in range(start, start + count):
        yield NewTask(f"{prefix}{n:08d}", os.urandom(payload_bytes))


def insert_many(backend: RedisBackend, into: Queue, tasks: Iterable[NewTask]) -> int:
    """Insert with the backend's insert script, FILL_BATCH tasks per round trip.

    The arguments are those `RedisBackend.insert` passes (clock shift, id, payload, tag,
    ETA, furthest ETA). Returns how many were inserted; raises on any refusal.
    """
    script = backend.client.register_script(SOURCES["insert"])
    keys = backend.keys(into)
    batch: list[NewTask] = []
    inserted = 0

    def flush() -> None:
        nonlocal inserted
        pipe = backend.client.pipeline(transaction=False)
        for task in batch:
            args: list[str | int | bytes] = [
                backend.clock_shift_us,
                task.id,
                task.payload,
                task.tag or "",
                task.eta_us,
                MAX_ETA_AHEAD_US,
            ]
            script(keys=keys, args=args, client=pipe)
        refused = [reply for reply in pipe.execute() if reply[0] != b"ok"]
        if refused:
            raise RuntimeError(f"insert refused {len(refused)} tasks into {into.name}: {refused[0]!r}")
        inserted += len(batch)
        batch.clear()

    for task in tasks:
        batch.append(task)
        if len(batch) == FILL_BATCH:
            flush()
    if batch:
        flush()
    return inserted


def total_tasks(backend: RedisBackend, of: Queue) -> int:
    stats = backend.queue_info(of, with_stats=True).stats
    assert stats is not None
    return stats.total_tasks


def fill(backend: RedisBackend, into: Queue, tasks: Iterable[NewTask]) -> None:
    """Insert ``tasks`` and check, through the API, that the queue grew by that many."""
    before = total_tasks(backend, into)
    inserted = insert_many(backend, into, tasks)
    after = total_tasks(backend, into)
    if after != before + inserted:
        raise RuntimeError(f"{into.name}: {before} + {inserted} inserted, but the queue holds {after}")


def lease_oldest(backend: RedisBackend, of: Queue, count: int, lease_seconds: int) -> None:
    """Lease the ``count`` oldest tasks for ``lease_seconds``, through the backend's lease."""
    per_call = 1000  # the API's numTasks limit
    leased = 0
    while leased < count:
        got = backend.lease(of, LeaseRequest(min(per_call, count - leased), lease_seconds * 1_000_000))
        if not got:
            raise RuntimeError(f"{of.name}: only {leased} of {count} tasks could be leased")
        leased += len(got)
