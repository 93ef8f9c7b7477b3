"""The Redis backend: every API call is one atomic Lua script, one round trip.

URLs::

    redis://[[user]:password@]host[:port][/db][?prefix=tq&max_tombstones=100000]
    rediss://…                      (TLS)
    redis+cluster://host:port[?prefix=tq&max_tombstones=100000]

Options (query string): ``prefix``, the start of every key (default ``tq``), so that
several bridges or test runs can share one server; ``max_tombstones``, the most
deleted (or purged) names one queue keeps reserved (default 100,000; 0: no bound), past
which the names deleted longest ago become usable again before their window ends; it
also bounds a purge's work (see lua/purge.lua).

Layout: all keys of a queue share the cluster hash tag ``{project/queue}``, so each
script touches one slot of a Redis Cluster; `lua/common.lua` describes the keys. Time
comes from the server's ``TIME`` inside the scripts, so bridge processes with skewed
clocks agree on every lease. A lease costs O(k log N) for k tasks, however many wait.
One key stands apart, ``<prefix>:queues``, the set of known queues ("project/queue")
that list_queues reads: a queue's scripts cannot reach it (another slot), so a script
reports a queue it sees for the first time (its ``meta`` key was missing) and the
backend adds it then; an ordinary insert costs no second round trip. Admin verbs:
list_tasks_page costs O(G k log N) for G tag groups and a page of k; activity and
dead letters are kept by the scripts themselves (see common.lua), so every process
sees the same.

Payloads: one of up to 4 KiB shares its task's string; a longer one is kept apart, in
a field of its own (common.lua), so that a script reads a few bytes of each task and
never a long payload: the backend reads those of the tasks a call returns, in HMGETs of
at most 8 MiB. Tasks stored before payloads were kept apart (each payload with its
header) are read as they are, with nothing to migrate; a lease or list reads their
payloads as it did then, until they are deleted.

Limits: values are kept whole in memory (a 1 MiB payload is 1 MiB of Redis). Calls are
not retried: when Redis cannot be reached the call fails with Unavailable (503) at once
and the client decides, because retrying a lease or insert that may have run would
hand back a different answer. The scripts need Redis 6.2 or newer (``ZADD … LT``,
``ZMSCORE``); docker-compose.yml runs 7.4.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib.resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hiredis
import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from backends import url_options
from backends.base import (
    ACTIVITY_MINUTES,
    DEFAULT_TOMBSTONE_SECONDS,
    MINUTE_US,
    Backend,
    DeadLetter,
    LeaseRequest,
    LeaseResult,
    MinuteActivity,
    NewTask,
    Queue,
    QueueInfo,
    QueueStats,
    Task,
    TaskPage,
    TaskState,
    first_within,
)
from backends.errors import (
    LEASE_CONFLICT,
    Conflict,
    Deleted,
    Duplicate,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from backends.limits import LIST_LIMIT, MAX_ETA_AHEAD_US, US
from backends.paging import position_of, token_after
from backends.redis import lua_helpers
from backends.redis.outages import CONNECT_TIMEOUT, SOCKET_TIMEOUT, Endpoint, Outage, translated

DEFAULT_PREFIX = "tq"
#: Tombstones kept per queue: 11 MiB of Redis at the bound with generated names, 57 MiB
#: with 500-character ones (measured with MEMORY USAGE). Without a bound, insert and
#: delete at a few hundred pairs a second fill tens of GB in the default 7-day window.
DEFAULT_MAX_TOMBSTONES = 100_000
#: The most payload bytes one read of payloads kept apart asks for: each takes Redis a
#: few ms (bench/big_lease.py), however many a call returns.
READ_BYTES = 8 * 1024 * 1024
#: Tries of a script that the server keeps forgetting (SCRIPT FLUSH while serving).
SCRIPT_ATTEMPTS = 3
_SCRIPTS = (
    "insert",
    "lease",
    "modify_lease",
    "delete",
    "list",
    "stats",
    "create_queue",
    "set_queue",
    "delete_queue",
    "purge",
    "list_page",
    "dead_letters",
    "missing",
    "clear_tombstones",
    "activity",
)
_KEY_NAMES = ("tasks", "index", "heads", "dead", "leased", "meta", "pending", "dropped", "letters", "activity")


def _load_scripts() -> dict[str, str]:
    folder = importlib.resources.files("backends.redis") / "lua"
    common = (folder / "common.lua").read_text()
    return {name: lua_helpers.assemble(common, (folder / f"{name}.lua").read_text()) for name in _SCRIPTS}


SOURCES = _load_scripts()


def _tasks(
    flat: list[Any], start: int = 0, *, with_payload: bool = True
) -> tuple[list[Task], list[tuple[int, int, bytes]]]:
    """Decode stored tasks, given as id, value, id, value, ... (bytes) from ``flat[start]``
    on: this side's one decoder of what `TASK` in common.lua describes.

    A value is "ENQUEUE:ETA:RETRIES:TAGLEN:" + tag + payload (the scripts leave the
    payload out where the call returns none), or "#" + the same header + tag + the
    payload's length, the payload kept apart. The second list holds, for each of those
    tasks, its position, its payload's length and the field that holds it (see
    `RedisBackend._apart`); its ``payload`` is None until read. ``flat`` loses everything
    from ``start`` on, and each value is let go once decoded, so that a lease of 32 MiB
    holds its payloads once.

    This runs for every task of a lease, so it is one loop rather than a function per
    task, and it parses each distinct ETA and retry count once: a lease's tasks share
    their new ETA, and retry counts repeat (bench/README.md has what each step saved).
    """
    ids = flat[start::2]
    values = flat[start + 1 :: 2]
    del flat[start:]
    values.reverse()
    take = values.pop  # each value leaves the list as it is decoded
    tasks: list[Task] = []
    new = tuple.__new__  # what Task(...) calls, less a Python frame around it
    numbers: dict[bytes, int] = {}
    apart: list[tuple[int, int, bytes]] = []
    for raw_id in ids:
        enqueue, eta, retries, taglen, rest = take().split(b":", 4)
        if taglen == b"0":
            tag = None
        else:
            n = int(taglen)
            rest, tag = rest[n:], rest[:n].decode()
        eta_us = numbers.get(eta)
        if eta_us is None:
            eta_us = numbers[eta] = int(eta)
        count = numbers.get(retries)
        if count is None:
            count = numbers[retries] = int(retries)
        try:
            enqueue_us = int(enqueue)
        except ValueError:  # "#": the payload is apart, at no cost to the others
            enqueue = enqueue[1:]
            enqueue_us = int(enqueue)
            if with_payload:
                apart.append((len(tasks), int(rest), raw_id + b":" + enqueue))  # KEYS[1] in common.lua
                rest = None
        fields = (raw_id.decode(), rest if with_payload else None, tag, enqueue_us, eta_us, count)
        tasks.append(new(Task, fields))
    return tasks, apart


def _dead_letter(task_id: bytes, record: bytes) -> DeadLetter:
    """Decode a dead letter record: "DROPPED:LEASES:SIZE:TAGLEN:" + tag."""
    dropped, leases, size, _, tag = record.split(b":", 4)
    return DeadLetter(task_id.decode(), tag.decode() or None, int(size), int(leases), int(dropped))


def _pack(command: tuple[str | int | bytes, ...]) -> list[bytes]:
    """A command in the Redis protocol (RESP), packed by hiredis (requirements.txt)."""
    return [hiredis.pack_command(command)]  # type: ignore[arg-type] # its stub says a 1-tuple


def _drop_if_stale(connection: Any) -> None:
    """Disconnect an idle connection that has something to read: the server closed it
    (a restart, a timeout) or an answer was left unread. redis-py's pool makes the same
    check when it hands out a connection; without it a restarted Redis would cost one
    failed call per idle connection. The next command connects afresh."""
    if connection.is_connected:
        try:
            stale = connection.can_read()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            stale = True
        if stale:
            connection.disconnect()


@functools.lru_cache(maxsize=4096)
def _keys(prefix: str, project: str, queue: str) -> tuple[str, ...]:
    base = f"{prefix}:{{{project}/{queue}}}:"
    return tuple(base + name for name in _KEY_NAMES)


def _client_from_url(url: str) -> tuple[redis.Redis | redis.cluster.RedisCluster, dict[str, Any]]:
    """The client, and the backend's own options from the query string."""
    parts = urlsplit(url)
    options = url_options(url, ("prefix", "max_tombstones"))
    prefix = options.get("prefix", DEFAULT_PREFIX)
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"invalid prefix {prefix!r} in {url!r}: it must be non-empty, without braces")
    most = options.get("max_tombstones", str(DEFAULT_MAX_TOMBSTONES))
    if not most.isdigit():
        raise ValueError(f"invalid max_tombstones {most!r} in {url!r}: it must be a whole number (0: no bound)")
    backend_options = {"prefix": prefix, "max_tombstones": int(most)}
    settings: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
    }
    if parts.scheme == "redis+cluster":
        plain = urlunsplit(("redis", parts.netloc, parts.path, "", ""))
        return redis.cluster.RedisCluster.from_url(plain, **settings), backend_options
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return redis.Redis.from_url(plain, **settings), backend_options


def _max_leases(queue: Queue, stored: bytes | str | None) -> int | None:
    """queue.yaml's value when there is one, else the queue's stored one (0: unlimited)."""
    if queue.max_leases is not None:
        return queue.max_leases
    return int(stored) or None if stored else None


def _duration(seconds: int) -> str:
    """A whole number of seconds in the largest unit that divides it: "7 days", "90 minutes"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def _missing_queue(queue: Queue) -> NotFound:
    return NotFound(f"Queue not found: {queue.name}", location="taskqueue")


class RedisBackend(Backend):
    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS,
        max_tombstones: int = DEFAULT_MAX_TOMBSTONES,
        endpoint: Endpoint | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.tombstone_us = tombstone_seconds * US
        self.max_tombstones = max_tombstones
        #: µs added to the server's clock by every script; tests move time with it.
        self.clock_shift_us = 0
        self._scripts: dict[str, Script] = {name: client.register_script(src) for name, src in SOURCES.items()}
        #: The scripts' connections when idle (plain Redis only; see _evalsha).
        self._pool = client.connection_pool if isinstance(client, redis.Redis) else None
        self._idle: list[Any] = []
        self._closed = False
        #: Where Redis is, as the causes of its outages name it (outages.py).
        self.endpoint = endpoint or Endpoint.of_client(client)
        self._outage = Outage()

    @classmethod
    def from_url(cls, url: str, *, tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS) -> RedisBackend:
        client, options = _client_from_url(url)
        return cls(client, tombstone_seconds=tombstone_seconds, endpoint=Endpoint.of_url(url), **options)

    def _translated(self) -> contextlib.AbstractContextManager[None]:
        """Driver errors as API errors, and outages logged once (`outages.translated`)."""
        return translated(self.endpoint, self._outage)

    def keys(self, queue: Queue) -> tuple[str, ...]:
        return _keys(self.prefix, queue.project, queue.name)

    @property
    def registry_key(self) -> str:
        """The set of every known queue, "project/name". Its own key (its own slot in a
        cluster): a script, bound to a queue's slot, reports a new queue and the caller
        adds it here, so only a queue's first insert or lease pays a second round trip."""
        return f"{self.prefix}:queues"

    def _register(self, queue: Queue) -> None:
        with self._translated():
            self.client.sadd(self.registry_key, f"{queue.project}/{queue.name}")

    def _run(self, script: str, queue: Queue, *args: str | int | bytes) -> Any:
        # A server that lost its scripts (a restart, SCRIPT FLUSH) gets them again, a few
        # times at most, then the call is a 503 rather than a loop.
        sha = self._scripts[script].sha
        keys_and_args = (*self.keys(queue), self.clock_shift_us, *args)
        with translated(self.endpoint, self._outage):  # self._translated(), without its call
            for _ in range(SCRIPT_ATTEMPTS):
                try:
                    return self._evalsha(sha, keys_and_args)
                except redis.exceptions.NoScriptError:
                    self.client.script_load(SOURCES[script])
        raise Unavailable("The task store (Redis) keeps losing its scripts; try again shortly.")

    def _evalsha(self, sha: str, keys_and_args: tuple[str | int | bytes, ...]) -> Any:
        """EVALSHA on a connection of the backend's own (plain Redis), else through the client.

        redis-py's client takes a connection from its pool, wraps the call in its retry
        and observability machinery and gives the connection back, for every command:
        about a fifth of a request's CPU in the bridge's process (bench/README.md). The
        scripts need little of it: a connection drops itself on any error of its socket
        and reconnects on its next command, a script's error reply leaves it usable, and
        an idle one is checked as the pool checks it (_drop_if_stale).
        Idle connections wait in a list (append and pop are atomic), so there are as many
        as calls ever ran at once. A cluster client routes by key, so it keeps its way.
        """
        pool = self._pool
        if pool is None:
            return self.client.evalsha(sha, len(_KEY_NAMES), *keys_and_args)
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = pool.connection_class(**pool.connection_kwargs)
        else:
            _drop_if_stale(connection)
        try:
            # Packed by hiredis straight: redis-py's packer checks every argument in Python.
            connection.send_packed_command(_pack(("EVALSHA", sha, len(_KEY_NAMES), *keys_and_args)))
            return connection.read_response()
        finally:
            if self._closed:
                connection.disconnect()
            else:
                self._idle.append(connection)

    def insert(self, queue: Queue, task: NewTask) -> Task:
        status, *rest = self._run(
            "insert",
            queue,
            task.id,
            task.payload,
            task.tag or "",
            task.eta_us,
            MAX_ETA_AHEAD_US,
            "1" if task.past_means_now else "",
        )
        if status == b"duplicate":
            if rest[0] == b"tombstoned":
                raise Duplicate(self._reserved(queue, task.id, int(float(rest[1]))), location="id")
            raise Duplicate(f"A task named {task.id} already exists", location="id")
        if status == b"too_late":
            raise InvalidArgument("leaseTimestamp may be at most 30 days ahead of now", location="leaseTimestamp")
        enqueue, eta, unknown = rest
        if unknown:
            self._register(queue)
        return Task(task.id, task.payload, task.tag, int(enqueue), int(eta), 0)

    def _reserved(self, queue: Queue, task_id: str, until_us: int) -> str:
        """Why a name cannot be used now, until when, and how to free it sooner."""
        until = datetime.datetime.fromtimestamp(until_us / US, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"Task name {task_id} was used by a deleted task and is reserved until {until} (deleted names stay "
            f"reserved {_duration(self.tombstone_us // US)}: --tombstone-seconds); free it now with the console's "
            f'"Clear tombstones" or `task-queue-bridge clear-tombstones {queue.name}`'
        )

    def _decoded(self, queue: Queue, flat: list[Any], start: int = 0) -> list[Task]:
        """The tasks of a script's answer, with their payloads (`_tasks`, `_apart`)."""
        return self._apart(queue, *_tasks(flat, start))

    def _apart(self, queue: Queue, tasks: list[Task], apart: list[tuple[int, int, bytes]]) -> list[Task]:
        """``tasks`` with the payloads kept apart (`_tasks`) read outside the script that
        found them, for a payload read through Lua costs Redis about twenty times as much
        (common.lua, APART_BYTES), in HMGETs of READ_BYTES at most, so that no command
        holds Redis long whatever a call returns. A task whose payload is gone by then
        was deleted meanwhile, and is left out, as if the call had come after the delete."""
        if not apart:
            return tasks
        key = self.keys(queue)[0]
        gone = set()
        while apart:
            count, size = 1, apart[0][1]
            while count < len(apart) and size + apart[count][1] <= READ_BYTES:
                size += apart[count][1]
                count += 1
            chunk, apart = apart[:count], apart[count:]
            with self._translated():
                found: list[bytes | None] = self.client.hmget(key, [field for _, _, field in chunk])  # type: ignore[assignment]
            for (i, _, _), payload in zip(chunk, found, strict=True):
                if payload is None:
                    gone.add(i)
                else:
                    tasks[i] = tasks[i]._replace(payload=payload)
        return [task for i, task in enumerate(tasks) if i not in gone] if gone else tasks

    def get(self, queue: Queue, task_id: str) -> Task:
        with self._translated():
            packed = self.client.hget(self.keys(queue)[0], task_id)
        found = [] if packed is None else self._decoded(queue, [task_id.encode(), packed])
        if not found:
            why, *record = self._run("missing", queue, task_id)
            if why == b"dropped":
                leases = _dead_letter(task_id.encode(), record[0]).leases
                raise Deleted(f"Task {task_id} was dropped after {leases} leases (maxLeases)", location="task")
            if why == b"tombstoned":
                raise Deleted(f"Task {task_id} was deleted", location="task")
            raise NotFound(f"Task not found: {task_id}", location="task")
        return found[0]

    def list_tasks(
        self, queue: Queue, *, with_payloads: bool = False, max_bytes: int = 0, task_bytes: int = 0
    ) -> list[Task]:
        flat = self._run("list", queue, LIST_LIMIT, "1" if with_payloads else "")
        tasks, apart = _tasks(flat, with_payload=with_payloads)
        if max_bytes:
            # Payloads kept apart count by the length the script gave: none of a task left
            # out is read.
            tasks = first_within(tasks, max_bytes, task_bytes, {i: length for i, length, _ in apart})
            apart = [entry for entry in apart if entry[0] < len(tasks)]
        return self._apart(queue, tasks, apart)  # payloads kept apart read after the script

    def delete(self, queue: Queue, task_id: str, token_us: int | None = None) -> None:
        token = "" if token_us is None else str(token_us)
        status = self._run("delete", queue, task_id, self.tombstone_us, token, self.max_tombstones)
        if status == b"conflict":
            raise Conflict(LEASE_CONFLICT, location="task")
        if status == b"tombstoned":
            raise Deleted(f"Task {task_id} was deleted", location="task")
        if status == b"missing":
            raise NotFound(f"Task not found: {task_id}", location="task")

    def lease(self, queue: Queue, request: LeaseRequest) -> LeaseResult:
        if not request.group_by_tag:
            mode = "any"
        elif request.tag is None:
            mode = "oldest"
        else:
            mode = "tag"
        # A lease of one task that is leased whatever its size cannot meet its budget.
        binds = request.num_tasks > 1 or not request.min_one
        flat: list[bytes] = list(
            self._run(
                "lease",
                queue,
                request.num_tasks,
                request.lease_us,
                mode,
                request.tag or "",
                "" if queue.max_leases is None else queue.max_leases,
                self.tombstone_us,
                request.max_bytes if binds else 0,
                request.task_bytes,
                self.max_tombstones,
                1 if request.min_one else 0,
            )
        )
        unknown, dropped = flat[0], 2 + 2 * int(flat[1])
        if unknown:
            self._register(queue)
        letters = [_dead_letter(flat[i], flat[i + 1]) for i in range(2, dropped, 2)]
        return LeaseResult(self._decoded(queue, flat, dropped), letters)

    def modify_lease(self, queue: Queue, task_id: str, lease_us: int, token_us: int | None) -> Task:
        token = "" if token_us is None else str(token_us)
        status, *rest = self._run("modify_lease", queue, task_id, lease_us, token)
        if status == b"ok":
            found = self._decoded(queue, [task_id.encode(), rest[0]])
            if found:
                return found[0]
            raise Deleted(f"Task {task_id} was deleted", location="task")
        if status == b"conflict":
            raise Conflict(LEASE_CONFLICT, location="task")
        if status == b"tombstoned":
            raise Deleted(f"Task {task_id} was deleted", location="task")
        raise NotFound(f"Task not found: {task_id}", location="task")

    def queue_info(self, queue: Queue, *, with_stats: bool) -> QueueInfo:
        if not with_stats:
            with self._translated():
                paused, stored = self.client.hmget(self.keys(queue)[5], "paused", "max_leases")
            return QueueInfo(_max_leases(queue, stored), paused=paused == b"1")
        total, oldest, minute, hour, available, delayed, dead, paused, stored = self._run("stats", queue)
        stats = QueueStats(
            int(total),
            int(oldest) if oldest else None,
            int(minute),
            int(hour),
            available=int(available),
            leased=int(total) - int(available) - int(delayed),
            delayed=int(delayed),
            dead_letters=int(dead),
        )
        return QueueInfo(_max_leases(queue, stored), stats, paused == b"1")

    # -- admin verbs ------------------------------------------------------------------

    def list_queues(self, project: str | None = None) -> list[Queue]:
        with self._translated():
            found: set[bytes] = self.client.smembers(self.registry_key)  # type: ignore[assignment]
            members = sorted(tuple(m.decode().rsplit("/", 1)) for m in found)
            names = [Queue(p, n) for p, n in members if project is None or p == project]
            # One read per queue, each on its queue's node (redis-py's cluster pipeline
            # leaves a connection open behind it).
            stored = [self.client.hget(self.keys(queue)[5], "max_leases") for queue in names]
        return [Queue(q.project, q.name, _max_leases(q, value)) for q, value in zip(names, stored, strict=True)]

    def create_queue(self, queue: Queue) -> None:
        if self._run("create_queue", queue, queue.max_leases or 0) == b"exists":
            raise Duplicate(f"Queue {queue.name} already exists", location="taskqueue")
        self._register(queue)

    def _set(self, queue: Queue, setting: str, value: int) -> None:
        status, *rest = self._run("set_queue", queue, setting, value)
        if status == b"missing":
            raise _missing_queue(queue)
        if rest[0]:
            self._register(queue)

    def update_queue(self, queue: Queue) -> None:
        self._set(queue, "max_leases", queue.max_leases or 0)

    def pause_queue(self, queue: Queue) -> None:
        self._set(queue, "paused", 1)

    def resume_queue(self, queue: Queue) -> None:
        self._set(queue, "paused", 0)

    def delete_queue(self, queue: Queue) -> None:
        # Unlisted first: an insert racing with this either lands before the delete and
        # goes with the queue, or after it and lists the queue again.
        with self._translated():
            self.client.srem(self.registry_key, f"{queue.project}/{queue.name}")
        if self._run("delete_queue", queue) == b"missing":
            raise _missing_queue(queue)

    def purge_queue(self, queue: Queue) -> int:
        count = int(self._run("purge", queue, self.tombstone_us, self.max_tombstones))
        if count < 0:
            raise _missing_queue(queue)
        return count

    def list_tasks_page(
        self,
        queue: Queue,
        *,
        page_size: int,
        page_token: str | None = None,
        tag: str | None = None,
        state: TaskState | None = None,
        with_payload: bool = False,
        max_bytes: int = 0,
        task_bytes: int = 0,
    ) -> TaskPage:
        after = "" if page_token is None else position_of(page_token)
        more, *flat = self._run(
            "list_page",
            queue,
            page_size,
            "" if tag is None else "1",
            tag or "",
            after,
            "" if state is None else str(state),
            "1" if with_payload else "",
            max_bytes,
            task_bytes,
        )
        tasks, apart = _tasks(flat, with_payload=with_payload)
        # After the last task the script listed, even if its payload is gone by now.
        token = token_after(tasks[-1]) if more and tasks else None
        return TaskPage(self._apart(queue, tasks, apart), token)

    def dead_letters(self, queue: Queue, limit: int = 100) -> list[DeadLetter]:
        flat = self._run("dead_letters", queue, limit)
        return [_dead_letter(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    def clear_tombstones(self, queue: Queue) -> int:
        return int(self._run("clear_tombstones", queue))

    def activity(self, queue: Queue) -> list[MinuteActivity]:
        now, depth, n, *flat = self._run("activity", queue)
        counts = {flat[i].decode(): int(flat[i + 1]) for i in range(0, int(n), 2)}
        # Lease counts are the lease script's own: "l<second>" in leased, and "m<minute>"
        # for the seconds folded into their minute (see leased_recently in common.lua).
        leases: dict[int, int] = {}
        for i in range(int(n), len(flat), 2):
            unit, at = flat[i][:1], int(flat[i][1:])
            minute = at // 60 if unit == b"l" else at
            leases[minute] = leases.get(minute, 0) + int(flat[i + 1])
        last = int(now) // MINUTE_US
        minutes: list[MinuteActivity] = []
        # From now backwards: the depth at the end of a minute, less what it changed,
        # is the depth at the end of the minute before.
        depth = int(depth)
        for minute in range(last, last - ACTIVITY_MINUTES, -1):
            inserted, deleted, dropped = (counts.get(f"{kind}{minute}", 0) for kind in "idx")
            changed = (f"i{minute}" in counts) or (f"d{minute}" in counts) or (f"x{minute}" in counts)
            minutes.append(
                MinuteActivity(minute * MINUTE_US, inserted, leases.get(minute, 0), deleted, depth if changed else None)
            )
            depth -= inserted - deleted - dropped
        return minutes[::-1]

    def ping(self) -> None:
        # SCRIPT EXISTS answers like PING and also tells whether a restarted server lost
        # the scripts; loading them here makes a readiness probe leave the bridge ready.
        scripts = list(self._scripts.values())
        with self._translated():
            loaded = self.client.script_exists(*(script.sha for script in scripts))
            for script, present in zip(scripts, loaded, strict=True):
                if not present:
                    self.client.script_load(script.script)

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().disconnect()
        if isinstance(self.client, redis.cluster.RedisCluster):
            # RedisCluster.close() leaves the pools of the nodes it reached open (redis-py
            # 8.1); the queue registry is on another node than most queues.
            self.client.disconnect_connection_pools()  # type: ignore[no-untyped-call]
        self.client.close()
