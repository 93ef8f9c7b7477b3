"""One hook for every backend call, and admin verbs that default in the contract."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from backends.base import (
    ADMIN_VERBS,
    FEATURES,
    VERBS,
    Backend,
    LeaseRequest,
    LeaseResult,
    NewTask,
    Queue,
    QueueInfo,
    Task,
)
from backends.cloudtasks.backend import CloudTasksBackend
from backends.errors import Unsupported
from backends.observed import observe
from backends.redis.memory import MemoryBackend

Q = Queue("app", "work")


class CoreOnly(Backend):
    """A backend that writes the core verbs and no admin verb."""

    def insert(self, queue: Queue, task: NewTask) -> Task:
        return Task(task.id, task.payload, task.tag, 1, 1, 0)

    def get(self, queue: Queue, task_id: str) -> Task:
        raise NotImplementedError

    def list_tasks(
        self, queue: Queue, *, with_payloads: bool = False, max_bytes: int = 0, task_bytes: int = 0
    ) -> list[Task]:
        return []

    def delete(self, queue: Queue, task_id: str, token_us: int | None = None) -> None:
        pass

    def lease(self, queue: Queue, request: LeaseRequest) -> LeaseResult:
        return LeaseResult()

    def modify_lease(self, queue: Queue, task_id: str, lease_us: int, token_us: int | None) -> Task:
        raise NotImplementedError

    def queue_info(self, queue: Queue, *, with_stats: bool) -> QueueInfo:
        return QueueInfo(None)

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_admin_verbs_a_backend_does_not_write_raise_unsupported_naming_the_verb() -> None:
    backend = CoreOnly()
    assert backend.supports == FEATURES
    with pytest.raises(Unsupported, match="does not support purge_queue"):
        backend.purge_queue(Q)
    with pytest.raises(Unsupported, match="does not support list_tasks_page"):
        backend.list_tasks_page(Q, page_size=10)


def test_a_backend_declares_the_admin_verbs_it_writes_and_may_not_declare_more() -> None:
    class Pauses(CoreOnly):
        def pause_queue(self, queue: Queue) -> None:
            pass

    assert Pauses.supports == {"pause_queue"} | FEATURES
    with pytest.raises(TypeError, match="declares resume_queue in supports but does not implement it"):

        class Boasts(CoreOnly):
            supports = frozenset({"resume_queue"})

    assert MemoryBackend.supports == ADMIN_VERBS | FEATURES


def test_the_cloud_tasks_backend_writes_no_stub_and_says_why_it_cannot() -> None:
    for verb in ("dead_letters", "clear_tombstones", "activity"):
        assert verb not in vars(CloudTasksBackend) and verb not in CloudTasksBackend.supports
    assert CloudTasksBackend.supports == (ADMIN_VERBS | FEATURES) - {"dead_letters", "clear_tombstones", "activity"}
    backend = object.__new__(CloudTasksBackend)  # its verbs that raise need no connection
    with pytest.raises(Unsupported, match="does not support activity: Cloud Tasks keeps no per-minute counts"):
        backend.activity(Q)


def test_every_verb_of_the_contract_goes_through_the_one_hook() -> None:
    seen: list[str] = []

    def hook(verb: str, call: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append(verb)
        try:
            return call(*args, **kwargs)
        except (Unsupported, NotImplementedError):
            return None

    contract = {
        name
        for name, member in vars(Backend).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert set(VERBS) == contract
    observed = observe(CoreOnly(), hook)
    assert observed.supports == FEATURES and isinstance(observed, Backend)
    arguments: dict[str, tuple[Any, ...]] = {
        "insert": (Q, NewTask("t", b"")),
        "get": (Q, "t"),
        "delete": (Q, "t"),
        "lease": (Q, LeaseRequest(1, 1)),
        "modify_lease": (Q, "t", 0, None),
        "list_queues": (),
        "ping": (),
        "close": (),
        "dead_letters": (Q,),
    }
    keywords: dict[str, dict[str, Any]] = {"queue_info": {"with_stats": False}, "list_tasks_page": {"page_size": 1}}
    for verb in VERBS:
        kwargs = keywords.get(verb, {})
        getattr(observed, verb)(*arguments.get(verb, (Q,)), **kwargs)
    assert seen == list(VERBS)
