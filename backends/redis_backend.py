"""The Redis backend: every API call is one atomic Lua script, one round trip.

URLs::

    redis://[[user]:password@]host[:port][/db][?prefix=tq]
    rediss://…                      (TLS)
    redis+cluster://host:port[?prefix=tq]

Options (query string): ``prefix``, the start of every key (default ``tq``), so that
several bridges or test runs can share one server.

Layout: all keys of a queue share the cluster hash tag ``{project/queue}``, so each
script touches one slot of a Redis Cluster; `lua/common.lua` describes the keys. Time
comes from the server's ``TIME`` inside the scripts, so bridge processes with skewed
clocks agree on every lease. A lease costs O(k log N) for k tasks, however many wait.

Limits: values are kept whole in memory (a 1 MiB payload is 1 MiB of Redis). Calls are
not retried: when Redis cannot be reached the call fails with Unavailable (503) at once
and the client decides, because retrying a lease or insert that may have run would
hand back a different answer.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from backends import url_options
from backends.base import (
    DEFAULT_TOMBSTONE_SECONDS,
    Backend,
    LeaseRequest,
    NewTask,
    Queue,
    QueueInfo,
    QueueStats,
    Task,
)
from backends.errors import LEASE_CONFLICT, ApiError, Conflict, Duplicate, InvalidArgument, NotFound, Unavailable
from backends.limits import LIST_LIMIT, MAX_ETA_AHEAD_US, US

DEFAULT_PREFIX = "tq"
#: Seconds to wait for a TCP connection before answering 503.
CONNECT_TIMEOUT = 2.0
#: Seconds to wait for a reply; the slowest script (a 1,000-task lease) takes milliseconds.
SOCKET_TIMEOUT = 10.0
_SCRIPTS = ("insert", "lease", "modify_lease", "delete", "list", "stats")
_KEY_NAMES = ("tasks", "index", "heads", "dead", "leased")


def _load_scripts() -> dict[str, str]:
    folder = importlib.resources.files("backends") / "lua"
    common = (folder / "common.lua").read_text()
    return {name: common + (folder / f"{name}.lua").read_text() for name in _SCRIPTS}


SOURCES = _load_scripts()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn driver errors into API errors where they enter."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise Unavailable("The task store (Redis) cannot be reached; try again shortly.") from exc
    except redis.ResponseError as exc:
        if str(exc).startswith(("OOM", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")):
            raise Unavailable("The task store (Redis) cannot take the request now; try again shortly.") from exc
        raise ApiError("The task store (Redis) failed.") from exc
    except redis.RedisError as exc:
        raise ApiError("The task store (Redis) failed.") from exc


def _task(task_id: bytes | str, packed: bytes, *, with_payload: bool = True) -> Task:
    """Decode a stored task: "ENQUEUE:ETA:RETRIES:TAGLEN:" + tag + payload."""
    enqueue, eta, retries, taglen, rest = packed.split(b":", 4)
    n = int(taglen)
    return Task(
        id=task_id if isinstance(task_id, str) else task_id.decode(),
        payload=rest[n:] if with_payload else None,
        tag=rest[:n].decode() if n else None,
        enqueue_us=int(enqueue),
        eta_us=int(eta),
        retry_count=int(retries),
    )


@functools.lru_cache(maxsize=4096)
def _keys(prefix: str, project: str, queue: str) -> tuple[str, ...]:
    base = f"{prefix}:{{{project}/{queue}}}:"
    return tuple(base + name for name in _KEY_NAMES)


def _client_from_url(url: str) -> tuple[redis.Redis | redis.cluster.RedisCluster, str]:
    parts = urlsplit(url)
    prefix = url_options(url, ("prefix",)).get("prefix", DEFAULT_PREFIX)
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"invalid prefix {prefix!r} in {url!r}: it must be non-empty, without braces")
    settings: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
    }
    if parts.scheme == "redis+cluster":
        plain = urlunsplit(("redis", parts.netloc, parts.path, "", ""))
        return redis.cluster.RedisCluster.from_url(plain, **settings), prefix
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return redis.Redis.from_url(plain, **settings), prefix


class RedisBackend(Backend):
    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.tombstone_us = tombstone_seconds * US
        #: µs added to the server's clock by every script; tests move time with it.
        self.clock_shift_us = 0
        self._scripts: dict[str, Script] = {name: client.register_script(src) for name, src in SOURCES.items()}

    @classmethod
    def from_url(cls, url: str, *, tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS) -> RedisBackend:
        client, prefix = _client_from_url(url)
        return cls(client, prefix=prefix, tombstone_seconds=tombstone_seconds)

    def keys(self, queue: Queue) -> tuple[str, ...]:
        return _keys(self.prefix, queue.project, queue.name)

    def _run(self, script: str, queue: Queue, *args: str | int | bytes) -> Any:
        # EVALSHA straight from the client: redis-py's Script wrapper costs a few % of a
        # request. A server that lost its scripts (a restart) gets them again once.
        sha = self._scripts[script].sha
        with _translated():
            try:
                return self.client.evalsha(sha, len(_KEY_NAMES), *self.keys(queue), self.clock_shift_us, *args)
            except redis.exceptions.NoScriptError:
                self.client.script_load(SOURCES[script])
                return self.client.evalsha(sha, len(_KEY_NAMES), *self.keys(queue), self.clock_shift_us, *args)

    def insert(self, queue: Queue, task: NewTask) -> Task:
        status, *rest = self._run("insert", queue, task.id, task.payload, task.tag or "", task.eta_us, MAX_ETA_AHEAD_US)
        if status == b"duplicate":
            if rest[0] == b"tombstoned":
                raise Duplicate(f"Task name {task.id} was used by a deleted task and is reserved", location="id")
            raise Duplicate(f"A task named {task.id} already exists", location="id")
        if status == b"too_late":
            raise InvalidArgument("leaseTimestamp may be at most 30 days ahead of now", location="leaseTimestamp")
        enqueue, eta = rest
        return Task(task.id, task.payload, task.tag, int(enqueue), int(eta), 0)

    def get(self, queue: Queue, task_id: str) -> Task:
        with _translated():
            packed = self.client.hget(self.keys(queue)[0], task_id)
        if packed is None:
            raise NotFound(f"Task not found: {task_id}", location="task")
        return _task(task_id, packed)  # type: ignore[arg-type]

    def list_tasks(self, queue: Queue) -> list[Task]:
        flat = self._run("list", queue, LIST_LIMIT)
        return [_task(flat[i], flat[i + 1], with_payload=False) for i in range(0, len(flat), 2)]

    def delete(self, queue: Queue, task_id: str) -> None:
        status = self._run("delete", queue, task_id, self.tombstone_us)
        if status == b"tombstoned":
            raise NotFound(f"Task {task_id} was deleted", location="task")
        if status == b"missing":
            raise NotFound(f"Task not found: {task_id}", location="task")

    def lease(self, queue: Queue, request: LeaseRequest) -> list[Task]:
        if not request.group_by_tag:
            mode = "any"
        elif request.tag is None:
            mode = "oldest"
        else:
            mode = "tag"
        flat: Sequence[bytes] = self._run(
            "lease",
            queue,
            request.num_tasks,
            request.lease_us,
            mode,
            request.tag or "",
            queue.max_leases or 0,
            self.tombstone_us,
        )
        return [_task(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    def modify_lease(self, queue: Queue, task_id: str, lease_us: int, token_us: int | None) -> Task:
        token = "" if token_us is None else str(token_us)
        status, *rest = self._run("modify_lease", queue, task_id, lease_us, token)
        if status == b"ok":
            return _task(task_id, rest[0])
        if status == b"conflict":
            raise Conflict(LEASE_CONFLICT, location="task")
        if status == b"tombstoned":
            raise NotFound(f"Task {task_id} was deleted", location="task")
        raise NotFound(f"Task not found: {task_id}", location="task")

    def queue_info(self, queue: Queue, *, with_stats: bool) -> QueueInfo:
        if not with_stats:
            # Nothing to read, but a queue is only described while its store answers.
            self.ping()
            return QueueInfo(queue.max_leases)
        total, oldest, minute, hour = self._run("stats", queue)
        stats = QueueStats(int(total), int(oldest) if oldest else None, int(minute), int(hour))
        return QueueInfo(queue.max_leases, stats)

    def ping(self) -> None:
        # SCRIPT EXISTS answers like PING and also tells whether a restarted server lost
        # the scripts; loading them here makes a readiness probe leave the bridge ready.
        scripts = list(self._scripts.values())
        with _translated():
            loaded = self.client.script_exists(*(script.sha for script in scripts))
            for script, present in zip(scripts, loaded, strict=True):
                if not present:
                    self.client.script_load(script.script)

    def close(self) -> None:
        self.client.close()
