"""Renewing and releasing a lease on a backend: the holder's token, expiry and conflicts."""

from __future__ import annotations

import pytest

from backends.base import Backend
from backends.errors import LEASE_CONFLICT, Conflict, Duplicate, NotFound
from backends.limits import US
from tests.support.api import now_us
from tests.support.backend import WORK, insert, lease
from tests.support.harness import Harness


def test_the_lease_holder_renews_with_its_lease_timestamp(backend: Backend, harness: Harness) -> None:
    insert(backend, "t1", b"work")
    [task] = lease(backend, secs=60)
    harness.advance(30)
    before = now_us()
    renewed = backend.modify_lease(WORK, "t1", 600 * US, task.eta_us)
    assert (renewed.id, renewed.payload, renewed.retry_count) == ("t1", b"work", 1)
    # The clock was moved on by 30 s, so now + 600 s is 630 s after the test's clock.
    assert abs(renewed.eta_us - (before + 630 * US)) < 60 * US
    assert backend.get(WORK, "t1").eta_us == renewed.eta_us
    harness.advance(300)
    assert lease(backend) == []


def test_renewing_without_a_token_works_while_the_lease_is_live(backend: Backend) -> None:
    insert(backend, "t1")
    [task] = lease(backend, secs=60)
    renewed = backend.modify_lease(WORK, "t1", 120 * US, None)
    assert renewed.retry_count == 1 and renewed.eta_us > task.eta_us


def test_a_stale_token_is_a_conflict_and_changes_nothing(backend: Backend) -> None:
    insert(backend, "t1")
    [task] = lease(backend, secs=60)
    for seconds in (600, 0):
        with pytest.raises(Conflict) as caught:
            backend.modify_lease(WORK, "t1", seconds * US, task.eta_us - 1)
        assert not isinstance(caught.value, Duplicate)
        assert caught.value.message == LEASE_CONFLICT
    assert backend.get(WORK, "t1").eta_us == task.eta_us


def test_renewing_an_expired_lease_is_a_conflict_with_or_without_a_token(backend: Backend, harness: Harness) -> None:
    insert(backend, "t1")
    [task] = lease(backend, secs=60)
    harness.advance(61)
    for token in (task.eta_us, None):
        with pytest.raises(Conflict):
            backend.modify_lease(WORK, "t1", 60 * US, token)


def test_a_task_never_leased_cannot_be_renewed_or_released(backend: Backend) -> None:
    insert(backend, "t1")
    for seconds in (60, 0):
        with pytest.raises(Conflict):
            backend.modify_lease(WORK, "t1", seconds * US, None)


def test_after_another_worker_takes_an_expired_task_the_first_token_is_refused(
    backend: Backend, harness: Harness
) -> None:
    insert(backend, "t1")
    [first] = lease(backend, secs=60)
    harness.advance(61)
    [second] = lease(backend, secs=60)
    with pytest.raises(Conflict):
        backend.modify_lease(WORK, "t1", 60 * US, first.eta_us)
    assert backend.modify_lease(WORK, "t1", 60 * US, second.eta_us).retry_count == 2


def test_a_lease_of_zero_releases_the_task_at_once_without_counting_a_lease(backend: Backend) -> None:
    insert(backend, "t1", b"work")
    [task] = lease(backend, secs=600)
    released = backend.modify_lease(WORK, "t1", 0, task.eta_us)
    assert (released.payload, released.retry_count) == (b"work", 1)
    assert released.eta_us < task.eta_us
    assert [t.retry_count for t in lease(backend)] == [2]


def test_renewing_an_unknown_or_deleted_task_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.modify_lease(WORK, "nope", 60 * US, None)
    insert(backend, "t1")
    [task] = lease(backend)
    backend.delete(WORK, "t1")
    for token in (task.eta_us, None):
        with pytest.raises(NotFound):
            backend.modify_lease(WORK, "t1", 60 * US, token)
