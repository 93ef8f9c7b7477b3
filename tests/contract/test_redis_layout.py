"""The Redis backend's layout of long payloads (common.lua, APART_BYTES): kept apart from
their tasks' headers, gone with their tasks, read only for the tasks a call returns and
never through Lua, and tasks stored before that still served.

The last tests watch Redis itself (MONITOR) and count the bytes of stored tasks and
payloads that the scripts read: bounds in bytes, generous, never in time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from backends.base import LeaseRequest, Queue
from backends.limits import US
from backends.redis.backend import RedisBackend
from tests.support.backend import PROJECT, WORK, ids, insert, lease
from tests.support.harness import BACKENDS, Variant, redis_harness
from tests.support.redis_server import RedisServer

#: The backends whose storage is the Redis backend's (memory is it on fakeredis).
SCRIPTED = [param for param in BACKENDS if param.id in ("memory", "redis", "redis-cluster")]


def payload(size: int) -> bytes:
    return os.urandom(size)


@pytest.fixture(params=SCRIPTED)
def scripted(request: pytest.FixtureRequest) -> Variant:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def stored(scripted: Variant, open_harness: Callable[..., Any]) -> RedisBackend:
    """The backend of a `SCRIPTED` variant (the `variant` fixture is this test's own)."""
    backend = open_harness().backend
    assert isinstance(backend, RedisBackend)
    return backend


@pytest.fixture
def variant(scripted: Variant) -> Variant:
    return scripted


def _payloads(backend: RedisBackend, queue: Queue = WORK) -> int:
    """How many payloads the queue keeps apart."""
    fields: list[bytes] = backend.client.hkeys(backend.keys(queue)[0])  # type: ignore[assignment]
    return sum(b":" in field for field in fields)


def test_a_long_payload_leaves_redis_with_its_task_however_the_task_goes(stored: RedisBackend) -> None:
    limited = Queue(PROJECT, "limited", max_leases=1)
    for name in ("deleted", "dropped", "purged"):
        insert(stored, name, payload(5000), queue=limited)
    insert(stored, "short", payload(4096), queue=limited)
    assert _payloads(stored, limited) == 3
    stored.delete(limited, "deleted")
    assert _payloads(stored, limited) == 2
    stored.modify_lease(limited, "dropped", 0, lease(stored, num=1, secs=600, queue=limited)[0].eta_us)
    result = stored.lease(limited, LeaseRequest(10, 600 * US))
    assert ids(result) == ["purged", "short"]
    assert [(letter.id, letter.payload_size) for letter in result.dropped] == [("dropped", 5000)]
    assert _payloads(stored, limited) == 1
    assert stored.purge_queue(limited) == 2
    assert _payloads(stored, limited) == 0


def test_a_name_used_again_gets_its_own_payload(stored: RedisBackend) -> None:
    insert(stored, "t1", payload(5000))
    stored.delete(WORK, "t1")
    stored.clear_tombstones(WORK)
    second = payload(6000)
    insert(stored, "t1", second)
    assert stored.get(WORK, "t1").payload == second
    assert _payloads(stored) == 1


def test_tasks_stored_with_their_long_payload_before_it_was_kept_apart_still_work(stored: RedisBackend) -> None:
    # Until payloads were kept apart every task held its own: a queue of then must serve.
    old = payload(10_000)
    task = insert(stored, "old", b"", tag="x")
    tasks_key = stored.keys(WORK)[0]
    stored.client.hset(tasks_key, "old", f"{task.enqueue_us}:{task.eta_us}:0:1:x".encode() + old)
    insert(stored, "new", payload(5000), tag="x")
    assert stored.get(WORK, "old").payload == old
    assert [(t.id, t.tag) for t in stored.list_tasks(WORK)] == [("old", "x"), ("new", "x")]
    assert [t.payload for t in stored.list_tasks_page(WORK, page_size=1, with_payload=True).tasks] == [old]
    assert [t.payload for t in stored.list_tasks(WORK, with_payloads=True)][0] == old
    (leased,) = stored.lease(WORK, LeaseRequest(1, 600 * US))
    assert (leased.id, leased.payload, leased.tag, leased.retry_count) == ("old", old, "x", 1)
    assert stored.modify_lease(WORK, "old", 0, leased.eta_us).payload == old
    stored.delete(WORK, "old")
    assert ids(lease(stored)) == ["new"]


# -- what the scripts read (a real redis-server, watched with MONITOR) ----------------


@pytest.fixture
def watched(redis_server: RedisServer) -> Iterator[RedisBackend]:
    harness = redis_harness(redis_server.url)
    assert isinstance(harness.backend, RedisBackend)
    yield harness.backend
    harness.close()


def _script_reads(backend: RedisBackend, call: Callable[[], object], client_type: str = "lua") -> int:
    """Bytes of stored tasks and payloads that the scripts run by ``call`` read (or, with
    ``client_type="tcp"``, that its commands outside the scripts read)."""
    client = backend.client
    assert isinstance(client, redis.Redis)
    tasks_key = backend.keys(WORK)[0]
    fields: list[bytes] = client.hkeys(tasks_key)  # type: ignore[assignment]
    sizes = {field.decode(): int(client.hstrlen(tasks_key, field)) for field in fields}
    commands: list[dict[str, Any]] = []
    started = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            started.set()
            for command in monitor.listen():
                if command["command"] == "ECHO end-of-watch":
                    return
                commands.append(command)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert started.wait(10)
    client.echo("start-of-watch")  # MONITOR is on once its first command shows
    call()
    client.echo("end-of-watch")
    watcher.join(10)
    assert not watcher.is_alive()
    read = 0
    for command in commands:
        if command["client_type"] != client_type:
            continue
        verb, *arguments = command["command"].split(" ")
        if verb.upper() in ("HGET", "HMGET") and arguments[0] == tasks_key:
            read += sum(sizes.get(field, 0) for field in arguments[1:])
    return read


@pytest.mark.redis
def test_a_lease_of_long_tasks_reads_only_their_headers_in_its_script(watched: RedisBackend) -> None:
    for n in range(40):
        insert(watched, f"t{n:02d}", payload(256 * 1024))
    leased: list[int] = []
    request = LeaseRequest(40, 600 * US, max_bytes=1024 * 1024, task_bytes=500)
    read = _script_reads(watched, lambda: leased.append(len(watched.lease(WORK, request))))
    assert leased == [2]  # 349,528 bytes of base64 each
    assert read < 40 * 100, f"the lease script read {read:,} bytes of tasks and payloads"


@pytest.mark.redis
def test_lists_of_long_tasks_read_no_payload_in_their_scripts(watched: RedisBackend) -> None:
    for n in range(20):
        insert(watched, f"t{n:02d}", payload(256 * 1024))
    pages: list[int] = []

    def listing() -> None:
        pages.append(len(watched.list_tasks(WORK)))
        pages.append(len(watched.list_tasks(WORK, with_payloads=True)))
        pages.append(len(watched.list_tasks_page(WORK, page_size=20).tasks))
        pages.append(len(watched.list_tasks_page(WORK, page_size=20, with_payload=True).tasks))

    read = _script_reads(watched, listing)
    assert pages == [20, 20, 20, 20]
    assert read < 4 * 20 * 100, f"the list scripts read {read:,} bytes of tasks and payloads"


@pytest.mark.redis
def test_a_list_with_a_budget_reads_no_payload_of_a_task_it_leaves_out(watched: RedisBackend) -> None:
    # The legacy-local dialect's list carries payloads: of 20 long ones, only those that fit.
    for n in range(20):
        insert(watched, f"t{n:02d}", payload(256 * 1024))
    listed: list[list[str]] = []
    read = _script_reads(
        watched,
        lambda: listed.append(ids(watched.list_tasks(WORK, with_payloads=True, max_bytes=1024 * 1024, task_bytes=500))),
        client_type="tcp",
    )
    assert listed == [["t00", "t01"]]  # 349,528 bytes of base64 each
    assert read == 2 * 256 * 1024, f"the list read {read:,} bytes of payloads for two tasks"
