"""Long payloads come back whole from every verb, on every backend (the Redis backend
keeps those over 4 KiB apart from their tasks: see test_redis_layout.py)."""

from __future__ import annotations

import os

import pytest

from backends.base import Backend, TaskState
from backends.errors import NotFound
from backends.limits import US
from tests.contract.test_admin import needs
from tests.support.backend import WORK, ids, insert, lease

#: Either side of the Redis backend's APART_BYTES (4 KiB), and well past it.
SIZES = (0, 4096, 4097, 100_000)


def payload(size: int) -> bytes:
    return os.urandom(size)


def test_payloads_of_every_size_come_back_whole_from_every_verb(backend: Backend) -> None:
    sent = {f"t{size}": payload(size) for size in SIZES}
    for name, data in sent.items():
        insert(backend, name, data, tag="big")
    for name, data in sent.items():
        assert backend.get(WORK, name).payload == data
    assert {task.id: task.payload for task in lease(backend, num=10, secs=0)} == sent
    leased = {task.id: task for task in lease(backend, num=10, group_by_tag=True, tag="big")}
    assert {name: task.payload for name, task in leased.items()} == sent
    assert {task.tag for task in leased.values()} == {"big"}
    renewed = backend.modify_lease(WORK, "t100000", 60 * US, leased["t100000"].eta_us)
    assert (renewed.payload, renewed.retry_count) == (sent["t100000"], 2)
    assert [task.payload for task in backend.list_tasks(WORK)] == [None] * len(SIZES)
    assert {task.id: task.payload for task in backend.list_tasks(WORK, with_payloads=True)} == sent
    if "list_tasks_page" in backend.supports:
        page = backend.list_tasks_page(WORK, page_size=10, with_payload=True)
        assert {task.id: task.payload for task in page.tasks} == sent
        bare = backend.list_tasks_page(WORK, page_size=10, state=TaskState.LEASED)
        assert sorted(ids(bare.tasks)) == sorted(sent) and {task.payload for task in bare.tasks} == {None}
    for name in sent:
        backend.delete(WORK, name)
        with pytest.raises(NotFound):
            backend.get(WORK, name)


def test_a_page_cut_by_its_budget_reads_on_to_every_long_payload(backend: Backend) -> None:
    needs(backend, "list_tasks_page")
    sent = [payload(10_000) for _ in range(5)]
    for n, data in enumerate(sent):
        insert(backend, f"t{n}", data)
    got, token = [], None
    while True:
        page = backend.list_tasks_page(WORK, page_size=10, page_token=token, with_payload=True, max_bytes=30_000)
        assert 1 <= len(page.tasks) <= 2
        got += [task.payload for task in page.tasks]
        if (token := page.next_page_token) is None:
            break
    assert got == sent
