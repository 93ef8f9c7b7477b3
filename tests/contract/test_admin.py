"""The admin verbs of the backend contract (queues, pages of tasks, dead letters, activity)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from backends.base import (
    ACTIVITY_MINUTES,
    MINUTE_US,
    Backend,
    LeaseRequest,
    NewTask,
    Queue,
    Task,
    TaskState,
    state_of,
)
from backends.errors import Duplicate, InvalidArgument, NotFound, Unsupported
from bridge.gate.backend import observed
from bridge.ops.metrics import BackendMeter
from tests.support.harness import Harness

SECOND = 1_000_000
Q = Queue("app", "work")


def needs(backend: Backend, verb: str) -> None:
    """Runs the rest of the test where the backend does ``verb``; elsewhere checks that it
    says it cannot, with Unsupported, and ends the test there."""
    if verb in backend.supports:
        return
    method: Callable[..., object] = getattr(backend, verb)
    arguments: dict[str, object] = {"list_queues": {}, "list_tasks_page": {"queue": Q, "page_size": 1}}.get(
        verb, {"queue": Q}
    )
    with pytest.raises(Unsupported):
        method(**arguments)
    pytest.skip(f"{type(backend).__name__} declares it cannot {verb}")


def put(backend: Backend, task_id: str, *, queue: Queue = Q, tag: str | None = None, delay: float = 0) -> Task:
    eta = int((time.time() + delay) * SECOND) if delay else 0
    return backend.insert(queue, NewTask(task_id, task_id.encode(), tag, eta))


def lease(backend: Backend, num: int = 10, secs: int = 60, queue: Queue = Q) -> list[str]:
    return [task.id for task in backend.lease(queue, LeaseRequest(num, secs * SECOND))]


# -- queues -------------------------------------------------------------------------


def test_list_queues_names_every_used_or_created_queue_by_project_then_name(backend: Backend) -> None:
    needs(backend, "list_queues")
    put(backend, "t1", queue=Queue("app", "b"))
    put(backend, "t1", queue=Queue("app", "a"))
    backend.create_queue(Queue("other", "c", max_leases=4))
    backend.lease(Queue("app", "polled"), LeaseRequest(1, SECOND))
    assert backend.list_queues("app") == [Queue("app", "a"), Queue("app", "b"), Queue("app", "polled")]
    assert backend.list_queues("other") == [Queue("other", "c", max_leases=4)]
    assert backend.list_queues("nobody") == []


def test_list_queues_without_a_project_lists_every_project(backend: Backend) -> None:
    needs(backend, "list_queues")
    put(backend, "t1", queue=Queue("beta", "b"))
    put(backend, "t1", queue=Queue("alpha", "z"))
    backend.create_queue(Queue("alpha", "c", max_leases=4))
    assert backend.list_queues() == [Queue("alpha", "c", max_leases=4), Queue("alpha", "z"), Queue("beta", "b")]


def test_create_queue_refuses_a_queue_that_exists(backend: Backend) -> None:
    needs(backend, "create_queue")
    backend.create_queue(Queue("app", "made"))
    put(backend, "t1")
    with pytest.raises(Duplicate):
        backend.create_queue(Queue("app", "made"))
    with pytest.raises(Duplicate):
        backend.create_queue(Q)


def test_a_created_queues_max_leases_is_kept_and_applied(backend: Backend, harness: Harness) -> None:
    needs(backend, "create_queue")
    backend.create_queue(Queue("app", "work", max_leases=1))
    assert backend.queue_info(Q, with_stats=False).max_leases == 1
    put(backend, "t1")
    assert lease(backend, secs=1) == ["t1"]
    harness.advance(2)
    assert lease(backend, secs=1) == []
    with pytest.raises(NotFound):
        backend.get(Q, "t1")


def test_queue_yaml_max_leases_wins_over_the_stored_one(backend: Backend, harness: Harness) -> None:
    needs(backend, "create_queue")
    backend.create_queue(Queue("app", "work", max_leases=1))
    configured = Queue("app", "work", max_leases=2)
    assert backend.queue_info(configured, with_stats=False).max_leases == 2
    put(backend, "t1")
    assert lease(backend, secs=1, queue=configured) == ["t1"]
    harness.advance(2)
    assert lease(backend, secs=1, queue=configured) == ["t1"]


def test_update_queue_changes_max_leases_of_a_known_queue_only(backend: Backend, harness: Harness) -> None:
    needs(backend, "update_queue")
    with pytest.raises(NotFound):
        backend.update_queue(Queue("app", "nowhere", max_leases=3))
    put(backend, "t1")
    backend.update_queue(Queue("app", "work", max_leases=3))
    assert backend.queue_info(Q, with_stats=False).max_leases == 3
    assert backend.list_queues("app") == [Queue("app", "work", max_leases=3)]
    backend.update_queue(Queue("app", "work", max_leases=None))
    assert backend.queue_info(Q, with_stats=False).max_leases is None


def test_delete_queue_drops_tasks_tombstones_and_the_listing(backend: Backend) -> None:
    needs(backend, "delete_queue")
    with pytest.raises(NotFound):
        backend.delete_queue(Queue("app", "nowhere"))
    put(backend, "t1")
    put(backend, "t2")
    backend.delete(Q, "t2")
    backend.delete_queue(Q)
    assert Q not in backend.list_queues()
    with pytest.raises(NotFound):
        backend.get(Q, "t1")
    with pytest.raises(NotFound):
        backend.delete_queue(Q)


def test_a_deleted_queue_can_be_used_again_at_once(backend: Backend) -> None:
    needs(backend, "delete_queue")
    put(backend, "t1")
    backend.delete(Q, "t1")
    backend.delete_queue(Q)
    # Everything went with the queue, tombstones too; using it again brings it back.
    put(backend, "t1")
    assert backend.list_queues("app") == [Q]
    assert [t.id for t in backend.list_tasks(Q)] == ["t1"]


def test_purge_queue_deletes_every_task_and_says_how_many(backend: Backend) -> None:
    needs(backend, "purge_queue")
    with pytest.raises(NotFound):
        backend.purge_queue(Queue("app", "nowhere"))
    for name in ("t1", "t2", "t3"):
        put(backend, name)
    assert lease(backend, num=1) == ["t1"]
    assert backend.purge_queue(Q) == 3
    assert backend.list_tasks(Q) == []
    assert lease(backend) == []
    assert backend.purge_queue(Q) == 0
    assert Q in backend.list_queues("app")


def test_purged_names_stay_reserved_like_deleted_ones(open_harness: Callable[..., Harness]) -> None:
    # App Engine's PurgeQueue keeps the names in its task_name_archive, as a delete does.
    harness = open_harness(tombstone_seconds=120)
    backend = harness.backend
    needs(backend, "purge_queue")
    put(backend, "t1")
    put(backend, "t2", tag="red")
    assert lease(backend, num=1) == ["t1"]
    backend.purge_queue(Q)
    for name in ("t1", "t2"):
        with pytest.raises(Duplicate):
            put(backend, name)
        with pytest.raises(NotFound, match="deleted"):
            backend.get(Q, name)
    harness.advance(121)
    put(backend, "t1")
    assert [t.id for t in backend.list_tasks(Q)] == ["t1"]


def test_a_paused_queue_accepts_inserts_and_leases_nothing_until_resumed(backend: Backend) -> None:
    needs(backend, "pause_queue")
    with pytest.raises(NotFound):
        backend.pause_queue(Queue("app", "nowhere"))
    put(backend, "t1")
    backend.pause_queue(Q)
    put(backend, "t2")
    assert backend.queue_info(Q, with_stats=False).paused
    assert lease(backend) == []
    assert backend.lease(Q, LeaseRequest(10, SECOND, group_by_tag=True)) == []
    backend.resume_queue(Q)
    assert not backend.queue_info(Q, with_stats=True).paused
    assert lease(backend) == ["t1", "t2"]


# -- pages of tasks -----------------------------------------------------------------


def _all_pages(backend: Backend, size: int, **filters: object) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = backend.list_tasks_page(Q, page_size=size, page_token=token, **filters)  # type: ignore[arg-type]
        pages.append([task.id for task in page.tasks])
        token = page.next_page_token
        if token is None:
            return pages


def test_pages_hold_every_task_once_by_eta_then_name_across_tags(backend: Backend) -> None:
    needs(backend, "list_tasks_page")
    for i, tag in enumerate(["b", None, "a", "b", None, "a", "c"]):
        put(backend, f"t{i}", tag=tag)
    put(backend, "later", delay=600)
    put(backend, "a-first", delay=-60)  # a past ETA, kept as given: it sorts first
    expected = [t.id for t in sorted(backend.list_tasks(Q), key=lambda t: (t.eta_us, t.id))]
    assert len(expected) == 9
    pages = _all_pages(backend, 4)
    assert [len(page) for page in pages] == [4, 4, 1]
    assert sum(pages, []) == expected
    assert _all_pages(backend, 9) == [expected]


def test_pages_filter_by_tag_and_by_state(backend: Backend) -> None:
    needs(backend, "list_tasks_page")
    put(backend, "held", tag="x")
    put(backend, "free", tag="x")
    put(backend, "plain")
    put(backend, "later", tag="x", delay=600)
    assert backend.lease(Q, LeaseRequest(1, 60 * SECOND, group_by_tag=True, tag="x"))[0].id == "held"
    assert _all_pages(backend, 10, tag="x") == [["free", "held", "later"]]
    assert _all_pages(backend, 10, tag="") == [["plain"]]
    assert _all_pages(backend, 10, state=TaskState.AVAILABLE) == [["free", "plain"]]
    assert _all_pages(backend, 10, state=TaskState.LEASED) == [["held"]]
    assert _all_pages(backend, 10, state=TaskState.DELAYED) == [["later"]]
    assert _all_pages(backend, 1, tag="x", state=TaskState.AVAILABLE) == [["free"]]
    now = time.time() * SECOND
    for task in backend.list_tasks_page(Q, page_size=10).tasks:
        assert state_of(task, int(now)) is {"held": TaskState.LEASED, "later": TaskState.DELAYED}.get(
            task.id, TaskState.AVAILABLE
        )


def test_pages_carry_payloads_only_when_asked(backend: Backend) -> None:
    needs(backend, "list_tasks_page")
    put(backend, "t1", tag="x")
    assert backend.list_tasks_page(Q, page_size=5).tasks[0].payload is None
    task = backend.list_tasks_page(Q, page_size=5, with_payload=True).tasks[0]
    assert (task.payload, task.tag, task.retry_count) == (b"t1", "x", 0)


@pytest.mark.parametrize("token", ["", "garbage", "MTIz", "!!!!"])
def test_a_page_token_the_backend_did_not_make_is_invalid(backend: Backend, token: str) -> None:
    needs(backend, "list_tasks_page")
    put(backend, "t1")
    with pytest.raises(InvalidArgument):
        backend.list_tasks_page(Q, page_size=5, page_token=token)


# -- dead letters -------------------------------------------------------------------


def test_a_task_dropped_after_max_leases_becomes_a_dead_letter(backend: Backend, harness: Harness) -> None:
    limited = Queue("app", "work", max_leases=2)
    backend.insert(limited, NewTask("t1", b"12345", "red"))
    assert [t.id for t in backend.lease(limited, LeaseRequest(5, SECOND))] == ["t1"]
    harness.advance(2)
    assert [t.id for t in backend.lease(limited, LeaseRequest(5, SECOND))] == ["t1"]
    harness.advance(2)
    result = backend.lease(limited, LeaseRequest(5, SECOND))
    assert list(result) == []
    (letter,) = result.dropped
    assert (letter.id, letter.tag, letter.payload_size, letter.leases) == ("t1", "red", 5, 2)
    with pytest.raises(NotFound, match="dropped after 2 leases"):
        backend.get(limited, "t1")
    needs(backend, "dead_letters")
    assert backend.dead_letters(limited) == [letter]
    stats = backend.queue_info(limited, with_stats=True).stats
    assert stats is not None and stats.dead_letters == 1 and stats.total_tasks == 0


def test_dead_letters_are_kept_for_the_tombstone_window_newest_first(open_harness: Callable[..., Harness]) -> None:
    harness = open_harness(tombstone_seconds=100)
    backend = harness.backend
    needs(backend, "dead_letters")
    limited = Queue("app", "work", max_leases=1)
    for name in ("t1", "t2"):
        backend.insert(limited, NewTask(name, b""))
        backend.lease(limited, LeaseRequest(1, SECOND))
        harness.advance(30)
        assert [letter.id for letter in backend.lease(limited, LeaseRequest(1, SECOND)).dropped] == [name]
    assert [letter.id for letter in backend.dead_letters(limited)] == ["t2", "t1"]
    assert [letter.id for letter in backend.dead_letters(limited, limit=1)] == ["t2"]
    harness.advance(80)
    assert [letter.id for letter in backend.dead_letters(limited)] == ["t2"]
    harness.advance(40)
    assert backend.dead_letters(limited) == []
    with pytest.raises(NotFound, match="Task not found"):
        backend.get(limited, "t2")


def test_a_lease_that_drops_the_oldest_task_still_leases_the_available_ones(backend: Backend, harness: Harness) -> None:
    limited = Queue("app", "work", max_leases=1)
    backend.insert(limited, NewTask("old", b""))
    (first,) = backend.lease(limited, LeaseRequest(1, SECOND))
    backend.insert(limited, NewTask("young", b"", "other", first.eta_us + SECOND))
    harness.advance(5)
    assert [t.id for t in backend.lease(limited, LeaseRequest(10, SECOND))] == ["young"]


def test_a_metered_backend_counts_and_logs_each_dropped_task(
    backend: Backend, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    metered = observed(backend, BackendMeter())
    limited = Queue("app", "work", max_leases=1)
    for name in ("t1", "t2"):
        metered.insert(limited, NewTask(name, b""))
    metered.lease(limited, LeaseRequest(2, SECOND))
    harness.advance(2)
    before = REGISTRY.get_sample_value("bridge_tasks_dead_lettered_total") or 0.0
    with caplog.at_level(logging.INFO, logger="bridge.dead_letters"):
        result = metered.lease(limited, LeaseRequest(2, SECOND))
    assert list(result) == []
    assert REGISTRY.get_sample_value("bridge_tasks_dead_lettered_total") == before + 2
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge.dead_letters"]
    assert lines == [
        "task t1 of queue app/work dropped after 1 leases (maxLeases)",
        "task t2 of queue app/work dropped after 1 leases (maxLeases)",
    ]


# -- tombstones, counts, activity ---------------------------------------------------


def test_clear_tombstones_frees_deleted_names_at_once(backend: Backend) -> None:
    needs(backend, "clear_tombstones")
    for name in ("t1", "t2", "t3"):
        put(backend, name)
    backend.delete(Q, "t1")
    backend.delete(Q, "t2")
    with pytest.raises(Duplicate):
        put(backend, "t1")
    assert backend.clear_tombstones(Q) == 2
    put(backend, "t1")
    put(backend, "t2")
    with pytest.raises(Duplicate):
        put(backend, "t3")
    assert backend.clear_tombstones(Q) == 0


def test_stats_count_tasks_by_state(backend: Backend) -> None:
    for name in ("a1", "a2", "l1"):
        put(backend, name)
    put(backend, "d1", delay=600)
    put(backend, "d2", delay=900)
    assert lease(backend, num=1) == ["a1"]
    stats = backend.queue_info(Q, with_stats=True).stats
    assert stats is not None and stats.total_tasks == 5
    if stats.available is None:
        assert stats.leased is None and stats.delayed is None
        pytest.skip(f"{type(backend).__name__} does not count tasks by state")
    assert (stats.available, stats.leased, stats.delayed) == (2, 1, 2)
    # A delayed task renewed before its first lease stays delayed; released, it is available.
    backend.modify_lease(Q, "d1", 0, None)
    stats = backend.queue_info(Q, with_stats=True).stats
    assert stats is not None and (stats.available, stats.leased, stats.delayed) == (3, 1, 1)
    backend.delete(Q, "d2")
    stats = backend.queue_info(Q, with_stats=True).stats
    assert stats is not None and (stats.available, stats.leased, stats.delayed) == (3, 1, 0)


def test_activity_counts_each_minute_of_the_last_hour(backend: Backend, harness: Harness) -> None:
    needs(backend, "activity")
    for name in ("t1", "t2", "t3"):
        put(backend, name)
    lease(backend, num=2)
    backend.delete(Q, "t3")
    harness.advance(120)
    put(backend, "t4")
    minutes = backend.activity(Q)
    assert len(minutes) == ACTIVITY_MINUTES
    assert all(b.minute_us - a.minute_us == MINUTE_US for a, b in zip(minutes, minutes[1:], strict=False))
    now, then = minutes[-1], minutes[-3]
    assert (then.inserted, then.leased, then.deleted, then.depth) == (3, 2, 1, 2)
    assert (now.inserted, now.leased, now.deleted, now.depth) == (1, 0, 0, 3)
    assert minutes[-2].depth is None and minutes[-2].inserted == 0
    harness.advance(3600)
    assert all(m.inserted == m.leased == m.deleted == 0 and m.depth is None for m in backend.activity(Q))


def test_activity_depth_follows_drops_and_purges(backend: Backend, harness: Harness) -> None:
    needs(backend, "activity")
    limited = Queue("app", "work", max_leases=1)
    for name in ("t1", "t2", "t3"):
        backend.insert(limited, NewTask(name, b""))
    backend.lease(limited, LeaseRequest(1, SECOND))
    harness.advance(60)
    # t2 and t3 are leased, t1 (leased once already) is dropped.
    assert [letter.id for letter in backend.lease(limited, LeaseRequest(10, SECOND)).dropped] == ["t1"]
    harness.advance(60)
    assert backend.purge_queue(limited) == 2
    minutes = backend.activity(limited)
    assert [(m.inserted, m.deleted, m.depth) for m in minutes[-3:]] == [(3, 0, 3), (0, 0, 2), (0, 2, 0)]
