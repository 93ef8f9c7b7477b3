"""(d): Redis memory per task, beyond the payload, and where it goes.

Each repetition starts an empty redis-server, warms it (the Lua scripts sit in the
script cache before the first reading), reads INFO ``used_memory``, inserts
``memory_tasks`` tasks with random 1 KiB payloads and API-style ids (22 random
characters, what an insert without ``id`` gets), drops the filling connections (their
buffers are counted in ``used_memory`` too) and reads it again.

``used_memory`` counts what jemalloc hands out, not what was asked for, and jemalloc
serves sizes from classes spaced a quarter of a power of two apart: a 1024-byte payload
stored as a Redis string (plus its header and NUL) lands in a 1280-byte allocation.
The breakdown says how much of the figure that rounding is.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from backends.base import NewTask
from backends.redis.backend import RedisBackend
from bench.fill import fill, insert_many, numbered, queue, total_tasks
from bench.plan import MEMORY_PAYLOAD_BYTES, Plan
from bench.services import redis_url, start_redis
from bridge.entropy import task_id as new_task_id

#: Bytes of a dict entry as Redis asks for it (key, value, next) and as jemalloc serves it.
DICT_ENTRY_ASKED = 24


def jemalloc_size_class(size: int) -> int:
    """The allocation jemalloc (64-bit, 16-byte quantum) serves for ``size`` bytes.

    8, then multiples of 16 up to 128, then four classes per doubling (160, 192, 224,
    256, 320, …, 1024, 1280, 1536, …).
    """
    if size <= 8:
        return 8
    if size <= 128:
        return -(-size // 16) * 16
    group = 1 << ((size - 1).bit_length() - 1)
    step = group // 4
    return -(-size // step) * step


def sds_size(length: int) -> int:
    """Bytes Redis asks for to store a string of ``length`` bytes: header, bytes, NUL."""
    if length < 1 << 5:
        header = 1
    elif length < 1 << 8:
        header = 3
    elif length < 1 << 16:
        header = 5
    else:
        header = 9
    return header + length + 1


@dataclass(frozen=True)
class KeyUsage:
    name: str
    type: str
    encoding: str
    #: MEMORY USAGE ÷ tasks.
    bytes_per_task: float


@dataclass(frozen=True)
class MemoryResult:
    tasks: int
    used_memory_delta: int
    #: The figure of (d): delta ÷ tasks − payload bytes.
    bytes_per_task: float
    keys: tuple[KeyUsage, ...]
    #: A stored task's value: header + payload, as one string.
    value_bytes: int
    id_bytes: int
    index_member_bytes: int

    @property
    def value_allocation(self) -> int:
        return jemalloc_size_class(sds_size(self.value_bytes))

    @property
    def unattributed(self) -> float:
        """Per-task bytes that used_memory saw and MEMORY USAGE did not count."""
        return self.bytes_per_task + MEMORY_PAYLOAD_BYTES - sum(k.bytes_per_task for k in self.keys)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "value_allocation": self.value_allocation, "unattributed": self.unattributed}


def _used_memory(url: str) -> int:
    """used_memory read over a fresh connection, so no filling client's buffers count."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def _api_style_tasks(count: int) -> list[NewTask]:
    return [NewTask(new_task_id(), os.urandom(MEMORY_PAYLOAD_BYTES)) for _ in range(count)]


def _server(backend: RedisBackend) -> redis.Redis:
    """The client of the one Redis server the measurement starts (never a cluster)."""
    client = backend.client
    assert isinstance(client, redis.Redis), "the memory measurement runs on one redis-server"
    return client


def _warm(backend: RedisBackend) -> None:
    """Load every script the measurement runs and create the server's lazy structures."""
    warmup = queue("memory-warmup")
    fill(backend, warmup, numbered("w", 2, MEMORY_PAYLOAD_BYTES))
    _server(backend).connection_pool.disconnect()


def _key_usages(client: redis.Redis, backend: RedisBackend, count: int) -> tuple[KeyUsage, ...]:
    usages = []
    for key in backend.keys(queue("memory")):
        reply = client.type(key)
        kind = reply.decode() if isinstance(reply, bytes) else reply
        if kind == "none":
            usages.append(KeyUsage(key, "none", "-", 0.0))
            continue
        encoding = client.object("encoding", key).decode()
        usages.append(KeyUsage(key, kind, encoding, (client.memory_usage(key, samples=0) or 0) / count))
    return tuple(usages)


def measure_once(plan: Plan, folder: Path) -> MemoryResult:
    server = start_redis(folder)
    try:
        url = redis_url(server)
        backend = RedisBackend.from_url(url)
        try:
            _warm(backend)
            tasks = _api_style_tasks(plan.memory_tasks)
            before = _used_memory(url)
            inserted = insert_many(backend, queue("memory"), tasks)
            _server(backend).connection_pool.disconnect()
            after = _used_memory(url)
            if total_tasks(backend, queue("memory")) != inserted:
                raise RuntimeError("the memory queue does not hold the tasks inserted")
            tasks_key, index_key = backend.keys(queue("memory"))[:2]
            client = _server(backend)
            sample = tasks[0].id
            return MemoryResult(
                tasks=inserted,
                used_memory_delta=after - before,
                bytes_per_task=(after - before) / inserted - MEMORY_PAYLOAD_BYTES,
                keys=_key_usages(client, backend, inserted),
                value_bytes=int(client.hstrlen(tasks_key, sample)),
                id_bytes=len(sample),
                index_member_bytes=len(client.zrange(index_key, 0, 0)[0]),
            )
        finally:
            backend.close()
    finally:
        server.stop()
