"""The handlers of the API's methods, one per Discovery method id.

Each takes the backend and a validated `Call` and returns the status and resource to
send. They hold the rules that need more than one parameter (a tag needs groupByTag);
everything a single parameter can get wrong was refused before they run. Each also
takes the dialect it answers in (`bridge.taskqueue.dialect`), bound once per app by
`handlers_for`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from backends.base import Backend, LeaseRequest, Queue
from backends.errors import InvalidArgument
from backends.limits import US, check_tag
from bridge.access.queues import QueueConfig
from bridge.errors import Required
from bridge.taskqueue import wire
from bridge.taskqueue.dialect import GOOGLE, Dialect


@dataclass(frozen=True, slots=True)
class Call:
    """One validated request."""

    #: The project exactly as the caller wrote it (echoed in queue names).
    project: str
    queue: Queue
    config: QueueConfig
    params: Mapping[str, Any]
    #: The decoded JSON body; None when there was none.
    body: Any
    #: The identities allowed everything (reported as the queue's adminEmails).
    admins: tuple[str, ...] = ()
    #: Largest lease or list response, in bytes of JSON (0: no limit).
    max_response_bytes: int = 0
    #: Whether a lease hands out its first task even past max_response_bytes (a call
    #: alone must never starve); a batch part, sharing the batch's budget, may not.
    min_one: bool = True

    @property
    def queue_name(self) -> str:
        return wire.queue_path(self.project, self.queue.name)


Result = tuple[int, dict[str, Any] | None]
#: A method's handler as the routes call it: in the deployment's dialect.
Handler = Callable[[Backend, Call], Result]


class SpeakingHandler(Protocol):
    """A method's handler, answering in the dialect it is given."""

    def __call__(self, backend: Backend, call: Call, dialect: Dialect = ...) -> Result: ...


def get_queue(backend: Backend, call: Call, dialect: Dialect = GOOGLE) -> Result:
    info = backend.queue_info(call.queue, with_stats=bool(call.params["getStats"]))
    config = call.config
    return 200, wire.queue_json(info, call.queue_name, config.consumers, config.producers, call.admins, dialect)


def insert(backend: Backend, call: Call, dialect: Dialect = GOOGLE) -> Result:
    if call.body is None:
        raise Required("The request body (a Task) is required", location="body")
    task = backend.insert(call.queue, wire.read_new_task(call.body, call.project, call.queue.name, dialect))
    return 200, wire.task_json(task, call.queue_name, dialect)


def lease(backend: Backend, call: Call, dialect: Dialect = GOOGLE) -> Result:
    group_by_tag = bool(call.params["groupByTag"])
    tag = call.params["tag"]
    if tag is not None and not group_by_tag:
        raise InvalidArgument("tag may only be given with groupByTag=true", location="tag")
    request = LeaseRequest(
        num_tasks=call.params["numTasks"],
        lease_us=call.params["leaseSecs"] * US,
        group_by_tag=group_by_tag,
        # No tag, or "tag=" (empty), asks for the oldest task's group, as App Engine's
        # stub reads it (`if group_by_tag and tag:`); check_tag makes "" None.
        tag=check_tag(tag),
        max_bytes=max(call.max_response_bytes - wire.TASKS_FRAME_BYTES, 1) if call.max_response_bytes else 0,
        task_bytes=wire.task_bytes(call.queue_name),
        min_one=call.min_one,
    )
    tasks = backend.lease(call.queue, request)
    return 200, wire.tasks_json("taskqueue#tasks", tasks, call.queue_name, dialect)


def list_tasks(backend: Backend, call: Call, dialect: Dialect = GOOGLE) -> Result:
    tasks = backend.list_tasks(
        call.queue,
        with_payloads=dialect.list_payloads,
        max_bytes=max(call.max_response_bytes - wire.TASKS_FRAME_BYTES, 1) if call.max_response_bytes else 0,
        task_bytes=wire.task_bytes(call.queue_name),
    )
    return 200, wire.tasks_json(dialect.list_kind, tasks, call.queue_name, dialect)


def get_task(backend: Backend, call: Call, dialect: Dialect = GOOGLE) -> Result:
    return 200, wire.task_json(backend.get(call.queue, call.params["task"]), call.queue_name, dialect)


def modify_lease(backend: Backend, call: Call, dialect: Dialect = GOOGLE) -> Result:
    task_id = call.params["task"]
    token = wire.read_lease_token(call.body, call.project, call.queue.name, task_id, dialect)
    if token is None and call.config.strict_leases:
        # Without the token, a worker whose lease expired could renew or release the
        # lease another worker now holds.
        raise Required("leaseTimestamp (the lease's token) is required on this queue", location="leaseTimestamp")
    task = backend.modify_lease(call.queue, task_id, call.params["newLeaseSeconds"] * US, token)
    return 200, wire.task_json(task, call.queue_name, dialect)


def delete(backend: Backend, call: Call, dialect: Dialect = GOOGLE) -> Result:
    backend.delete(call.queue, call.params["task"])
    return 204, None  # the same in every dialect


#: The most each method's resource weighs in its answer besides a part's headers
#: (`bridge.gate.budget.PART_BYTES`), by queue name: what a batch part reserves before
#: it runs. A lease or list is then given what is left as its own budget; a lease
#: reserves only its empty answer, since it leases nothing that does not fit
#: (``min_one=False``).
ANSWER_BYTES: dict[str, Callable[[str], int]] = {
    "taskqueue.taskqueues.get": lambda queue_name: 64 * 1024,  # the ACL's lists of emails
    "taskqueue.tasks.insert": wire.max_task_bytes,
    "taskqueue.tasks.lease": lambda queue_name: wire.TASKS_FRAME_BYTES,
    "taskqueue.tasks.list": wire.max_listed_bytes,
    "taskqueue.tasks.get": wire.max_task_bytes,
    "taskqueue.tasks.update": wire.max_task_bytes,
    "taskqueue.tasks.patch": wire.max_task_bytes,
    "taskqueue.tasks.delete": lambda queue_name: 0,
}

HANDLERS: dict[str, SpeakingHandler] = {
    "taskqueue.taskqueues.get": get_queue,
    "taskqueue.tasks.insert": insert,
    "taskqueue.tasks.lease": lease,
    "taskqueue.tasks.list": list_tasks,
    "taskqueue.tasks.get": get_task,
    "taskqueue.tasks.update": modify_lease,
    "taskqueue.tasks.patch": modify_lease,
    "taskqueue.tasks.delete": delete,
}


def handlers_for(dialect: Dialect) -> Mapping[str, Handler]:
    """The handlers answering in ``dialect``: `HANDLERS` themselves for Google's, so that
    the default dialect's requests pay nothing for the choice."""
    if dialect is GOOGLE:
        return HANDLERS
    return {method: functools.partial(handler, dialect=dialect) for method, handler in HANDLERS.items()}


def answer_bytes_for(dialect: Dialect) -> Mapping[str, Callable[[str], int]]:
    """`ANSWER_BYTES` in ``dialect``: where a list carries payloads, one listed task
    may weigh as much as a leased one."""
    if not dialect.list_payloads:
        return ANSWER_BYTES
    return {**ANSWER_BYTES, "taskqueue.tasks.list": wire.max_task_bytes}
