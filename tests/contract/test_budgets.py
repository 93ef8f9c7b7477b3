"""Response budgets on every backend: a lease that may lease nothing (`LeaseRequest.min_one`),
and lists and pages of tasks cut to ``max_bytes`` (`Backend.list_tasks`, `list_tasks_page`).

A task costs `task_size`: with ``task_bytes=10``, the id "tN" (2 bytes) and a payload of
3,000 bytes (4,000 in base64), 4,012 bytes.
"""

from __future__ import annotations

from backends.base import Backend, LeaseRequest, TaskPage, task_size
from backends.limits import US
from tests.contract.test_admin import needs
from tests.support.api import now_us
from tests.support.backend import WORK, ids, insert, lease

PAYLOAD = bytes(3000)
COST = 4012


def _pages(backend: Backend, **options: object) -> list[TaskPage]:
    pages, token = [], None
    while True:
        page = backend.list_tasks_page(WORK, page_size=10, page_token=token, **options)  # type: ignore[arg-type]
        pages.append(page)
        token = page.next_page_token
        if token is None:
            return pages


def test_a_task_costs_its_bytes_its_id_its_tag_escaped_and_its_payload_in_base64(backend: Backend) -> None:
    task = insert(backend, "t1", PAYLOAD)
    assert task_size(task, 10) == COST
    assert task_size(insert(backend, "t2", b"1234", tag="é"), 0) == 2 + 6 * 2 + 8
    assert task_size(task._replace(payload=None), 10) == 12


def test_a_lease_that_may_lease_nothing_leaves_a_first_task_past_its_budget_available(backend: Backend) -> None:
    insert(backend, "t1", PAYLOAD)
    insert(backend, "t2", b"small")
    for num_tasks in (1, 10):
        request = LeaseRequest(num_tasks, 600 * US, max_bytes=COST - 1, task_bytes=10, min_one=False)
        assert backend.lease(WORK, request) == []
    assert ids(lease(backend, num=10)) == ["t1", "t2"]


def test_a_lease_of_one_task_leases_it_whatever_its_size_unless_told_otherwise(backend: Backend) -> None:
    insert(backend, "t1", PAYLOAD)
    assert ids(backend.lease(WORK, LeaseRequest(1, 600 * US, max_bytes=1, task_bytes=10))) == ["t1"]


def test_pages_with_payloads_stop_before_their_budget_and_go_on_after_their_last_task(backend: Backend) -> None:
    needs(backend, "list_tasks_page")
    names = [f"t{n}" for n in range(1, 6)]
    for name in names:
        insert(backend, name, PAYLOAD)
    pages = _pages(backend, with_payload=True, max_bytes=2 * COST + 1, task_bytes=10)
    assert [ids(page.tasks) for page in pages] == [["t1", "t2"], ["t3", "t4"], ["t5"]]
    assert all(task.payload == PAYLOAD for page in pages for task in page.tasks)


def test_a_page_holds_one_task_however_small_its_budget(backend: Backend) -> None:
    needs(backend, "list_tasks_page")
    for name in ("t1", "t2"):
        insert(backend, name, PAYLOAD)
    pages = _pages(backend, with_payload=True, max_bytes=1, task_bytes=10)
    assert [ids(page.tasks) for page in pages] == [["t1"], ["t2"]]


def test_a_page_without_payloads_counts_none(backend: Backend) -> None:
    needs(backend, "list_tasks_page")
    for n in range(1, 6):
        insert(backend, f"t{n}", PAYLOAD)
    (page,) = _pages(backend, max_bytes=5 * 12, task_bytes=10)
    assert ids(page.tasks) == ["t1", "t2", "t3", "t4", "t5"]
    assert [ids(p.tasks) for p in _pages(backend, max_bytes=4 * 12, task_bytes=10)] == [
        ["t1", "t2", "t3", "t4"],
        ["t5"],
    ]


def test_a_list_with_a_budget_ends_before_the_task_that_passes_it_but_holds_one(backend: Backend) -> None:
    # With task_bytes 10: 148 bytes for t0 (100 of payload), then 10,680 each for 8,000
    # (long enough for the Redis backend to keep them apart, and to read them only if kept).
    start = now_us() - 60 * US
    for n, size in enumerate((100, 8000, 8000)):
        insert(backend, f"t{n}", bytes(size), eta_us=start + n)
    with_payloads = backend.list_tasks(WORK, with_payloads=True, max_bytes=20_000, task_bytes=10)
    assert [(t.id, t.payload) for t in with_payloads] == [("t0", bytes(100)), ("t1", bytes(8000))]
    assert ids(backend.list_tasks(WORK, max_bytes=20_000, task_bytes=10)) == ["t0", "t1", "t2"]
    assert ids(backend.list_tasks(WORK, with_payloads=True, max_bytes=1, task_bytes=10)) == ["t0"]
    assert ids(backend.list_tasks(WORK, with_payloads=True)) == ["t0", "t1", "t2"]
