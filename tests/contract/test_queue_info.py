"""queue_info on a backend: maxLeases, and the stats counted at one moment."""

from __future__ import annotations

from backends.base import Backend, Queue
from tests.support.backend import PROJECT, WORK, insert, lease
from tests.support.harness import Harness


def test_a_queue_describes_itself_without_stats_unless_asked(backend: Backend) -> None:
    info = backend.queue_info(WORK, with_stats=False)
    assert info.max_leases is None and info.stats is None


def test_a_queue_reports_the_max_leases_it_was_given(backend: Backend) -> None:
    limited = Queue(PROJECT, "limited", max_leases=5)
    insert(backend, queue=limited)
    assert backend.queue_info(limited, with_stats=False).max_leases == 5
    assert backend.queue_info(limited, with_stats=True).max_leases == 5


def test_stats_of_an_empty_queue_count_nothing(backend: Backend) -> None:
    stats = backend.queue_info(WORK, with_stats=True).stats
    assert stats is not None
    assert (stats.total_tasks, stats.oldest_eta_us) == (0, None)


def test_stats_count_live_tasks_leased_or_not_and_give_the_oldest_eta(backend: Backend) -> None:
    insert(backend, "t1")
    t2 = insert(backend, "t2")
    insert(backend, "gone")
    backend.delete(WORK, "gone")
    lease(backend, num=1, secs=3600)
    stats = backend.queue_info(WORK, with_stats=True).stats
    assert stats is not None
    # t1 is leased for an hour, so the oldest ETA is now t2's.
    assert (stats.total_tasks, stats.oldest_eta_us) == (2, t2.eta_us)


def test_stats_count_the_leases_of_the_last_minute_and_hour(backend: Backend, harness: Harness) -> None:
    for i in range(5):
        insert(backend, f"t{i}")

    def counts() -> tuple[int | None, int | None]:
        stats = backend.queue_info(WORK, with_stats=True).stats
        assert stats is not None
        return stats.leased_last_minute, stats.leased_last_hour

    lease(backend, num=2, secs=10)
    harness.advance(30)
    lease(backend, num=1, secs=10)
    assert counts() == (3, 3)
    harness.advance(45)
    assert counts() == (1, 3)
    harness.advance(3600)
    assert counts() == (0, 0)
