"""Insert, get, list and delete on a backend: stored values, ETAs, names and tombstones."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backends.base import Backend, NewTask, Queue
from backends.errors import Duplicate, InvalidArgument, NotFound
from backends.limits import LIST_LIMIT, MAX_ETA_AHEAD_US, US
from tests.support.api import now_us
from tests.support.backend import PROJECT, WORK, ids, insert, lease
from tests.support.harness import Harness

MIB = 1024 * 1024
#: How far a backend's clock may be from the test's (a remote Redis, a slow machine).
SKEW_US = 60 * US


def test_insert_returns_the_stored_task_with_retry_count_zero_and_enqueued_now(backend: Backend) -> None:
    before = now_us()
    task = insert(backend, "t1", b"hello", tag="red")
    assert (task.id, task.payload, task.tag, task.retry_count) == ("t1", b"hello", "red", 0)
    assert abs(task.enqueue_us - before) < SKEW_US
    assert task.enqueue_us <= task.eta_us < task.enqueue_us + SKEW_US


def test_a_task_available_at_once_has_its_enqueue_time_as_its_eta(backend: Backend) -> None:
    task = insert(backend, eta_us=0)
    assert task.eta_us == task.enqueue_us


def test_a_zero_eta_means_now_and_a_past_one_is_kept_so_it_sorts_first(backend: Backend) -> None:
    before = now_us()
    early = insert(backend, "early")
    zero = insert(backend, "zero", eta_us=0)
    for task in (early, zero):
        assert abs(task.eta_us - before) < SKEW_US
    # App Engine's taskqueue_stub.py keeps a past ETA as given.
    past = insert(backend, "pastdue", eta_us=early.eta_us - 30 * US)
    assert past.eta_us == early.eta_us - 30 * US
    assert ids(backend.list_tasks(WORK)) == ["pastdue", "early", "zero"]
    assert ids(lease(backend, num=1)) == ["pastdue"]


def test_a_future_eta_keeps_the_task_back_until_it_passes(backend: Backend, harness: Harness) -> None:
    eta = now_us() + 3600 * US
    assert abs(insert(backend, "later", eta_us=eta).eta_us - eta) < SKEW_US
    assert lease(backend) == []
    harness.advance(3700)
    assert ids(lease(backend)) == ["later"]


def test_an_eta_more_than_30_days_ahead_is_refused_and_nothing_stored(backend: Backend) -> None:
    with pytest.raises(InvalidArgument):
        insert(backend, eta_us=now_us() + MAX_ETA_AHEAD_US + 24 * 3600 * US)
    assert backend.list_tasks(WORK) == []


def test_an_eta_too_far_ahead_is_refused_before_the_name_is_looked_at(backend: Backend) -> None:
    # As App Engine's stub checks a request (its ETA) before it adds the task.
    insert(backend, "t1")
    with pytest.raises(InvalidArgument):
        insert(backend, "t1", eta_us=now_us() + MAX_ETA_AHEAD_US + 24 * 3600 * US)


def test_get_returns_the_payload_and_list_does_not(backend: Backend) -> None:
    body = bytes(range(256))
    insert(backend, "t1", body, tag="x")
    got = backend.get(WORK, "t1")
    assert (got.id, got.payload, got.tag, got.retry_count) == ("t1", body, "x", 0)
    [entry] = backend.list_tasks(WORK)
    assert (entry.id, entry.payload, entry.tag, entry.retry_count) == ("t1", None, "x", 0)
    assert (entry.enqueue_us, entry.eta_us) == (got.enqueue_us, got.eta_us)


def test_list_gives_payloads_when_asked(backend: Backend) -> None:
    body = bytes(range(256))
    insert(backend, "t1", body, tag="x")
    insert(backend, "t2", b"")
    listed = backend.list_tasks(WORK, with_payloads=True)
    assert [(t.id, t.payload, t.tag) for t in listed] == [("t1", body, "x"), ("t2", b"", None)]
    assert [t.payload for t in backend.list_tasks(WORK)] == [None, None]


def test_underscored_names_are_kept_as_they_are(backend: Backend) -> None:
    """The names a legacy-local bridge takes (test_project, test_queue) are stored as
    they are, apart from their hyphenated namesakes."""
    underscored, hyphenated = Queue("test_project", "test_queue"), Queue("test_project", "test-queue")
    backend.insert(underscored, NewTask("t1", b"x"))
    backend.insert(hyphenated, NewTask("t1", b"y"))
    assert backend.get(underscored, "t1").payload == b"x"
    assert backend.get(hyphenated, "t1").payload == b"y"
    assert {queue.name for queue in backend.list_queues("test_project")} >= {"test_queue", "test-queue"}


def test_an_untagged_task_has_no_tag(backend: Backend) -> None:
    insert(backend, "t1")
    assert backend.get(WORK, "t1").tag is None
    assert backend.list_tasks(WORK)[0].tag is None


def test_list_returns_at_most_the_limit_in_eta_order(backend: Backend) -> None:
    base = now_us() + 3600 * US
    for i in range(LIST_LIMIT + 5):
        # Later names get earlier ETAs, so that ETA order is not insertion order.
        insert(backend, f"t{i:03d}", eta_us=base - i * 1000)
    assert ids(backend.list_tasks(WORK)) == [f"t{i:03d}" for i in range(LIST_LIMIT + 4, 4, -1)]


def test_list_orders_tasks_of_the_same_eta_by_name(backend: Backend) -> None:
    eta = now_us() + 3600 * US
    for name in ("b", "c", "a"):
        insert(backend, name, eta_us=eta)
    assert ids(backend.list_tasks(WORK)) == ["a", "b", "c"]


def test_list_of_an_empty_queue_is_empty(backend: Backend) -> None:
    assert backend.list_tasks(Queue(PROJECT, "empty")) == []


def test_queues_of_other_names_or_projects_are_separate(backend: Backend) -> None:
    insert(backend, "t1")
    for queue in (Queue(PROJECT, "other"), Queue("other-app", WORK.name)):
        assert backend.list_tasks(queue) == []
        assert lease(backend, queue=queue) == []
        insert(backend, "t1", queue=queue)  # the same name, no duplicate
    assert ids(backend.list_tasks(WORK)) == ["t1"]


def test_a_domain_project_holds_its_queues_like_any_other(backend: Backend) -> None:
    domain = Queue("example.com:demo", WORK.name)
    insert(backend, "t1", b"x", queue=domain)
    assert backend.get(domain, "t1").payload == b"x"
    assert ids(lease(backend, queue=domain)) == ["t1"]
    assert backend.list_tasks(WORK) == []


def test_a_live_name_cannot_be_inserted_twice(backend: Backend) -> None:
    insert(backend, "t1", b"first")
    with pytest.raises(Duplicate):
        insert(backend, "t1", b"second")
    assert backend.get(WORK, "t1").payload == b"first"


def test_a_deleted_name_is_reserved_until_its_tombstone_expires(open_harness: Callable[..., Harness]) -> None:
    harness = open_harness(tombstone_seconds=120)
    insert(harness.backend, "t1")
    harness.backend.delete(WORK, "t1")
    with pytest.raises(Duplicate):
        insert(harness.backend, "t1")
    harness.advance(60)
    with pytest.raises(Duplicate):
        insert(harness.backend, "t1")
    harness.advance(61)
    assert insert(harness.backend, "t1").id == "t1"


def test_delete_removes_a_task_whatever_its_lease(backend: Backend) -> None:
    insert(backend, "leased")
    insert(backend, "waiting")
    assert ids(lease(backend, num=1)) == ["leased"]
    backend.delete(WORK, "leased")
    backend.delete(WORK, "waiting")
    assert backend.list_tasks(WORK) == []
    assert lease(backend) == []
    for name in ("leased", "waiting"):
        with pytest.raises(NotFound):
            backend.get(WORK, name)


def test_deleting_an_unknown_task_is_not_found_and_a_deleted_one_says_so(backend: Backend) -> None:
    with pytest.raises(NotFound) as unknown:
        backend.delete(WORK, "nope")
    assert "nope" in unknown.value.message
    insert(backend, "t1")
    backend.delete(WORK, "t1")
    with pytest.raises(NotFound) as again:
        backend.delete(WORK, "t1")
    assert "deleted" in again.value.message


def test_get_of_an_unknown_task_is_not_found_and_of_a_deleted_one_says_so(backend: Backend) -> None:
    with pytest.raises(NotFound) as unknown:
        backend.get(WORK, "nope")
    assert "deleted" not in unknown.value.message
    insert(backend, "t1")
    backend.delete(WORK, "t1")
    # The stub's FetchTask answers TOMBSTONED_TASK, as delete and update do here.
    with pytest.raises(NotFound) as deleted:
        backend.get(WORK, "t1")
    assert "deleted" in deleted.value.message


def test_a_payload_of_1_mib_is_stored_whole(backend: Backend) -> None:
    big = bytes(range(256)) * (MIB // 256)
    insert(backend, "big", big)
    assert backend.get(WORK, "big").payload == big


def test_a_500_byte_utf8_tag_and_a_500_character_name_are_stored_as_given(backend: Backend) -> None:
    tag = "é" * 250
    name = "a_-" * 166 + "zz"
    insert(backend, name, tag=tag)
    stored = backend.get(WORK, name)
    assert (stored.id, stored.tag) == (name, tag)
