"""Tombstones are bounded per queue, so their memory is predictable; a name they reserve
says until when and how to free it."""

from __future__ import annotations

import datetime
import re
import time

import pytest

from backends.base import NewTask, Queue
from backends.errors import Duplicate
from backends.redis.backend import RedisBackend
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


def test_past_max_tombstones_the_names_deleted_first_become_usable_again(redis_server: RedisServer) -> None:
    backend = RedisBackend.from_url(redis_server.url + "?prefix=bounded&max_tombstones=3")
    queue = Queue("app", "q")
    try:
        for i in range(5):
            backend.insert(queue, NewTask(f"t{i}", b""))
            backend.delete(queue, f"t{i}")
        assert backend.client.zcard(backend.keys(queue)[3]) == 3
        for i in (0, 1):
            backend.insert(queue, NewTask(f"t{i}", b""))  # its tombstone went first
        for i in (2, 3, 4):
            with pytest.raises(Duplicate):
                backend.insert(queue, NewTask(f"t{i}", b""))
    finally:
        backend.close()


def test_a_purge_reserves_at_most_max_tombstones_names_the_first_in_the_index(redis_server: RedisServer) -> None:
    backend = RedisBackend.from_url(redis_server.url + "?prefix=purged&max_tombstones=3")
    queue = Queue("app", "q")
    try:
        backend.insert(queue, NewTask("old", b""))
        backend.delete(queue, "old")
        # Untagged tasks sort first in the index, each group by ETA then name.
        for name, tag in (("u2", None), ("u1", None), ("r1", "red"), ("b1", "b"), ("b2", "b")):
            backend.insert(queue, NewTask(name, b"", tag))
        assert backend.purge_queue(queue) == 5
        assert backend.client.zcard(backend.keys(queue)[3]) == 3
        for name in ("old", "b2", "r1"):
            backend.insert(queue, NewTask(name, b""))  # past the bound: usable again
        for name in ("u1", "u2", "b1"):
            with pytest.raises(Duplicate):
                backend.insert(queue, NewTask(name, b""))
    finally:
        backend.close()


def test_a_bad_max_tombstones_option_is_refused_with_its_name(redis_server: RedisServer) -> None:
    with pytest.raises(ValueError, match="max_tombstones"):
        RedisBackend.from_url(redis_server.url + "?max_tombstones=lots")


@pytest.mark.parametrize("seconds, window", [(604800, "7 days"), (5400, "90 minutes"), (3601, "3601 seconds")])
def test_a_reserved_name_says_until_when_and_how_to_free_it(
    redis_server: RedisServer, seconds: int, window: str
) -> None:
    backend = RedisBackend.from_url(redis_server.url + f"?prefix=reserved{seconds}", tombstone_seconds=seconds)
    queue = Queue("app", "samples")
    try:
        backend.insert(queue, NewTask("t1", b""))
        deleted = time.time()
        backend.delete(queue, "t1")
        with pytest.raises(Duplicate) as refused:
            backend.insert(queue, NewTask("t1", b""))
        message = refused.value.message
        until = re.search(r"is reserved until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \(", message)
        assert until, message
        ends = datetime.datetime.strptime(until[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.UTC).timestamp()
        assert deleted + seconds - 2 <= ends <= deleted + seconds + 2
        assert f"(deleted names stay reserved {window}: --tombstone-seconds)" in message
        assert message.endswith('the console\'s "Clear tombstones" or `task-queue-bridge clear-tombstones samples`')
        backend.clear_tombstones(queue)
        backend.insert(queue, NewTask("t1", b""))
    finally:
        backend.close()
