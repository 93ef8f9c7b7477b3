"""lease.lua's batches, on the backends that run it: every task of a 1,000-task lease,
tasks put straight back (leaseSecs=0) handed out once per call and kept in the index,
the response budget counted to the byte and stopping inside a batch with everything
after it untouched, each task's own lease count, and the lease counts exact once the
script folded old seconds into their minutes."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from backends.base import MINUTE_US, Backend, LeaseRequest, Queue
from backends.limits import US
from backends.redis.memory import MemoryBackend
from tests.support.backend import PROJECT, WORK, ids, insert, lease
from tests.support.harness import BACKENDS, REGISTRY, Harness, Variant

#: The backends whose leases are lease.lua (memory is the same script on fakeredis).
SCRIPTED = [param for param in BACKENDS if REGISTRY[str(param.id)].scripted]


@pytest.fixture(params=SCRIPTED)
def variant(request: pytest.FixtureRequest) -> Variant:
    """Only these: the Cloud Tasks backend has no lease.lua (and no budget; see KNOWN_DIFFERENCES.md)."""
    return request.param  # type: ignore[no-any-return]


def test_a_lease_of_1000_tasks_hands_out_each_once_in_one_call(backend: Backend) -> None:
    names = [f"t{i:04d}" for i in range(1000)]
    for name in names:
        insert(backend, name, b"x")
    leased = lease(backend, num=1000, secs=600)
    assert ids(leased) == names
    assert {task.retry_count for task in leased} == {1}
    assert lease(backend, num=1000) == []


def test_a_lease_of_zero_seconds_past_one_batch_hands_out_each_task_once(backend: Backend) -> None:
    # The second batch (of at most 1,000) holds the last two tasks and then those the
    # first batch put straight back: only the two are leased from it.
    names = [f"t{i:04d}" for i in range(1002)]
    for name in names:
        insert(backend, name, b"x")
    assert ids(lease(backend, num=2000, secs=0)) == names
    assert sorted(ids(lease(backend, num=2000, secs=0))) == names


def test_a_task_put_back_among_those_still_to_lease_stays_in_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only a task due at the very µs of a lease sorts after one that the same call put
    # straight back (leaseSecs=0), so only fakeredis, whose clock a test can stop, shows
    # it. At T, u1 and x1 go back to T first; both groups then start at T, and the
    # untagged one (u0 before x1) is read up to x1's name: u0, u1 (leased already: it
    # stays in the index), u3.
    def clock_at(us: int) -> None:
        monkeypatch.setattr(time, "time", lambda: us / US)  # fakeredis's TIME

    backend = MemoryBackend.from_url("memory://")
    at = 1_800_000_000_000_000
    for offset, name, tag in ((-2, "u1", None), (-1, "x1", "x"), (0, "u0", None), (0, "u3", None)):
        clock_at(at + offset)
        insert(backend, name, tag=tag)
    assert ids(lease(backend, secs=0)) == ["u1", "x1", "u0", "u3"]
    clock_at(at + 1)
    assert sorted(ids(lease(backend, secs=0))) == ["u0", "u1", "u3", "x1"]


def test_the_budget_stops_before_the_first_task_that_does_not_fit_and_leaves_the_rest_untouched(
    backend: Backend,
) -> None:
    limited = Queue(PROJECT, "limited", max_leases=1)
    insert(backend, "d0", queue=limited)
    assert ids(lease(backend, secs=0, queue=limited)) == ["d0"]  # leased once: dropped by the next lease
    insert(backend, "a", b"abc", queue=limited)
    big = insert(backend, "b", bytes(3000), queue=limited)  # 4,000 bytes of base64: past the budget
    small = insert(backend, "c", b"abc", queue=limited)
    result = backend.lease(limited, LeaseRequest(10, 600 * US, max_bytes=1000))
    assert ids(result) == ["a"]
    assert [letter.id for letter in result.dropped] == ["d0"]
    # The task that did not fit, and the one after it, as they were.
    assert backend.get(limited, "b") == big
    assert backend.get(limited, "c") == small
    assert [(task.id, task.retry_count) for task in lease(backend, queue=limited)] == [("b", 1), ("c", 1)]


def test_the_budget_counts_each_task_to_the_byte(backend: Backend) -> None:
    # task_bytes, the id, 6 bytes per byte of the tag, the payload in base64: 4, 6 and 7
    # bytes make 8, 8 and 12 (rounded up, and not past a multiple of 3), so the three
    # tasks cost 31, 31 and 35 with task_bytes=10 and the tag "tg".
    exact, short = Queue(PROJECT, "exact"), Queue(PROJECT, "short")
    for queue in (exact, short):
        for name, size in (("a", 4), ("b", 6), ("c", 7)):
            insert(backend, name, bytes(size), tag="tg", queue=queue)
    request = LeaseRequest(10, 600 * US, True, "tg", max_bytes=97, task_bytes=10)
    assert ids(backend.lease(exact, request)) == ["a", "b", "c"]
    request = LeaseRequest(10, 600 * US, True, "tg", max_bytes=96, task_bytes=10)
    assert ids(backend.lease(short, request)) == ["a", "b"]


def test_a_lease_that_may_lease_nothing_still_leases_what_fits(backend: Backend) -> None:
    for n in range(1, 4):
        insert(backend, f"t{n}", bytes(3000))
    request = LeaseRequest(10, 600 * US, max_bytes=2 * 4012, task_bytes=10, min_one=False)
    assert ids(backend.lease(WORK, request)) == ["t1", "t2"]
    assert ids(lease(backend)) == ["t3"]


def test_one_lease_counts_each_task_from_its_own_lease_count(backend: Backend) -> None:
    # Tasks leased 3, 1 and 0 times before, in one call: the first is dropped, each of
    # the others gets its own count plus one.
    limited = Queue(PROJECT, "limited", max_leases=3)
    insert(backend, "a", queue=limited)
    lease(backend, secs=0, queue=limited)
    lease(backend, secs=0, queue=limited)
    insert(backend, "b", queue=limited)
    assert [(t.id, t.retry_count) for t in lease(backend, secs=0, queue=limited)] == [("a", 3), ("b", 1)]
    insert(backend, "c", queue=limited)
    result = backend.lease(limited, LeaseRequest(10, 0))
    assert [(t.id, t.retry_count) for t in result] == [("b", 2), ("c", 1)]
    assert [letter.id for letter in result.dropped] == ["a"]


def test_lease_counts_stay_exact_once_old_seconds_are_folded_into_their_minutes(
    backend: Backend, harness: Harness
) -> None:
    # A lease counts its second only; seconds that left the last minute are folded into
    # their minute once the counts hold more than 150 fields. 250 leases, one every 7 s
    # (29 minutes), fold many times.
    insert(backend, "t")
    leased_at = []
    for _ in range(250):
        (task,) = lease(backend, num=1, secs=0)
        leased_at.append(task.eta_us)  # a lease of 0 s: its new ETA is the moment of the lease
        harness.advance(7)
    stats = backend.queue_info(WORK, with_stats=True).stats
    assert stats is not None
    # The last lease was 7 s ago: those of the last minute are 7, 14, ..., 56 s old.
    assert (stats.leased_last_minute, stats.leased_last_hour) == (8, 250)
    per_minute = Counter(at // MINUTE_US for at in leased_at)
    minutes = backend.activity(WORK)
    assert {m.minute_us // MINUTE_US: m.leased for m in minutes if m.leased} == per_minute
    harness.advance(3600)
    stats = backend.queue_info(WORK, with_stats=True).stats
    assert stats is not None and (stats.leased_last_minute, stats.leased_last_hour) == (0, 0)
    assert all(m.leased == 0 for m in backend.activity(WORK))
