"""Short forms of the calls the backend-level contract suite makes on a `Backend`.

They take and return the contract's own values (`backends.base`); the suite's HTTP
counterpart is `tests.support.api`.
"""

from __future__ import annotations

from collections.abc import Iterable

from backends.base import Backend, LeaseRequest, NewTask, Queue, Task
from backends.limits import US

#: The front strips partition prefixes (``s~``) before it calls a backend.
PROJECT = "demo-app"
WORK = Queue(PROJECT, "work")


def insert(
    backend: Backend,
    task_id: str = "t1",
    payload: bytes = b"payload",
    *,
    tag: str | None = None,
    eta_us: int = 0,
    queue: Queue = WORK,
) -> Task:
    return backend.insert(queue, NewTask(task_id, payload, tag, eta_us))


def lease(
    backend: Backend,
    num: int = 10,
    secs: int = 60,
    *,
    group_by_tag: bool = False,
    tag: str | None = None,
    queue: Queue = WORK,
) -> list[Task]:
    return backend.lease(queue, LeaseRequest(num, secs * US, group_by_tag, tag))


def ids(tasks: Iterable[Task]) -> list[str]:
    return [task.id for task in tasks]
