"""lease.lua's batches, on the backends that run it: every task of a 1,000-task lease,
and the response budget stopping inside a batch with everything after it untouched."""

from __future__ import annotations

import pytest

from backends.base import Backend, LeaseRequest, Queue
from backends.limits import US
from tests.support.backend import PROJECT, ids, insert, lease
from tests.support.harness import BACKENDS, Variant

#: The backends whose leases are lease.lua (memory is the same script on fakeredis).
SCRIPTED = [param for param in BACKENDS if param.id in ("memory", "redis", "redis-cluster")]


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
