"""Leases on a backend: order, counts, expiry, tag groups, maxLeases and concurrent callers."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from backends.base import Backend, Queue
from backends.errors import Duplicate, NotFound
from backends.limits import US
from tests.support.api import now_us
from tests.support.backend import PROJECT, ids, insert, lease
from tests.support.harness import Harness


def test_lease_takes_the_oldest_eta_first_and_breaks_ties_by_name(backend: Backend, harness: Harness) -> None:
    soon = now_us() + 60 * US
    insert(backend, "c-later", eta_us=soon + 2000)
    insert(backend, "b-tie", eta_us=soon + 1000, tag="x")
    insert(backend, "a-tie", eta_us=soon + 1000, tag="y")
    insert(backend, "d-first", eta_us=soon)
    harness.advance(120)
    assert ids(lease(backend)) == ["d-first", "a-tie", "b-tie", "c-later"]


def test_lease_hands_out_the_payload_a_new_eta_and_an_incremented_retry_count(backend: Backend) -> None:
    insert(backend, "t1", b"work", tag="red")
    before = now_us()
    [task] = lease(backend, num=1, secs=300)
    assert (task.id, task.payload, task.tag, task.retry_count) == ("t1", b"work", "red", 1)
    assert abs(task.eta_us - (before + 300 * US)) < 60 * US


def test_a_leased_task_is_not_leased_again_until_its_lease_expires(backend: Backend, harness: Harness) -> None:
    insert(backend, "t1")
    assert [t.retry_count for t in lease(backend, secs=60)] == [1]
    assert lease(backend) == []
    harness.advance(59)
    assert lease(backend) == []
    harness.advance(2)
    assert [t.retry_count for t in lease(backend, secs=60)] == [2]


def test_num_tasks_caps_the_lease_and_an_empty_queue_gives_none(backend: Backend) -> None:
    for i in range(5):
        insert(backend, f"t{i}")
    assert ids(lease(backend, num=3)) == ["t0", "t1", "t2"]
    assert ids(lease(backend, num=3)) == ["t3", "t4"]
    assert lease(backend, num=3) == []


def test_a_lease_of_zero_seconds_hands_each_task_out_once_per_call(backend: Backend) -> None:
    for i in range(3):
        insert(backend, f"t{i}")
    assert ids(lease(backend, secs=0)) == ["t0", "t1", "t2"]
    assert sorted(ids(lease(backend, secs=0))) == ["t0", "t1", "t2"]


def test_without_group_by_tag_every_tag_is_leased(backend: Backend) -> None:
    insert(backend, "a1", tag="a")
    insert(backend, "u1")
    insert(backend, "b1", tag="b")
    assert ids(lease(backend)) == ["a1", "u1", "b1"]


def test_group_by_tag_with_a_tag_leases_only_that_tag(backend: Backend) -> None:
    insert(backend, "a1", tag="a")
    insert(backend, "b1", tag="b")
    insert(backend, "a2", tag="a")
    insert(backend, "u1")
    assert ids(lease(backend, group_by_tag=True, tag="a")) == ["a1", "a2"]
    assert lease(backend, group_by_tag=True, tag="a") == []
    assert ids(lease(backend)) == ["b1", "u1"]


def test_group_by_tag_without_a_tag_leases_the_oldest_available_tasks_tag(backend: Backend) -> None:
    insert(backend, "b1", tag="b")
    insert(backend, "a1", tag="a")
    insert(backend, "b2", tag="b")
    insert(backend, "u1")
    leased = lease(backend, group_by_tag=True)
    assert ids(leased) == ["b1", "b2"]
    assert {task.tag for task in leased} == {"b"}
    assert ids(lease(backend, group_by_tag=True)) == ["a1"]
    assert ids(lease(backend, group_by_tag=True)) == ["u1"]


def test_untagged_tasks_form_their_own_group(backend: Backend) -> None:
    insert(backend, "u1")
    insert(backend, "t1", tag="t")
    insert(backend, "u2")
    leased = lease(backend, group_by_tag=True)
    assert ids(leased) == ["u1", "u2"]
    assert all(task.tag is None for task in leased)


def test_an_empty_tag_leases_the_untagged_group(backend: Backend) -> None:
    insert(backend, "t1", tag="t")
    insert(backend, "u1")
    assert ids(lease(backend, group_by_tag=True, tag="")) == ["u1"]


def test_tags_are_leased_by_their_exact_utf8_value(backend: Backend) -> None:
    insert(backend, "t1", tag="größe")
    insert(backend, "t2", tag="grosse")
    insert(backend, "t3", tag='quo"te\\')
    assert ids(lease(backend, group_by_tag=True, tag="größe")) == ["t1"]
    assert ids(lease(backend, group_by_tag=True, tag='quo"te\\')) == ["t3"]


def test_a_task_leased_max_leases_times_is_dropped_and_tombstoned(backend: Backend, harness: Harness) -> None:
    limited = Queue(PROJECT, "limited", max_leases=2)
    insert(backend, "t1", queue=limited)
    assert [t.retry_count for t in lease(backend, secs=10, queue=limited)] == [1]
    harness.advance(11)
    assert [t.retry_count for t in lease(backend, secs=10, queue=limited)] == [2]
    harness.advance(11)
    assert lease(backend, queue=limited) == []
    with pytest.raises(NotFound):
        backend.get(limited, "t1")
    with pytest.raises(Duplicate):
        insert(backend, "t1", queue=limited)


def test_concurrent_leases_never_hand_out_the_same_task(backend: Backend) -> None:
    names = {f"t{i:03d}" for i in range(200)}
    for name in sorted(names):
        insert(backend, name)
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            while batch := lease(backend, num=7, secs=600):
                with lock:
                    seen.update(ids(batch))
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert max(seen.values()) == 1
    assert set(seen) == names
