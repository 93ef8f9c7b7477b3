"""The handlers of the Cloud Tasks v2beta2 methods, one per RPC, and the table of them.

Each takes a `Call` and the request message and returns the response message: translate,
call the backend, translate back. Both transports (`bridge.cloudtasks.grpc_server`,
`bridge.cloudtasks.rest`) call `invoke`, so a method is written once.

Access: each method is governed by the queue.yaml ACL of the v1 method it amounts to
(CreateTask is tasks.insert, LeaseTasks tasks.lease, …); queue administration is for the
admins (``--admins``) alone, as `bridge.access.acl` gives methods it does not name.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.cloud import tasks_v2beta2 as ct
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2, json_format

from backends.base import DEFAULT_TOMBSTONE_SECONDS, PAGE_LIMIT, Backend, LeaseRequest, NewTask, Queue, QueueInfo, Task
from backends.cloudtasks.errors import NOT_FOUND
from backends.errors import ApiError, Duplicate, InvalidArgument, NotFound
from backends.limits import NUM_TASKS, QUEUE_NAME, US
from bridge import entropy
from bridge.access.acl import Policy
from bridge.access.auth import Authenticator
from bridge.access.queues import QueueRegistry
from bridge.cloudtasks import convert
from bridge.cloudtasks.convert import FailedPrecondition, QueueName, Unimplemented
from bridge.gate.access import Admission

SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"


@dataclass(frozen=True)
class Front:
    """What every call needs: the bridge's backend, queue definitions and access rules."""

    backend: Backend
    queues: QueueRegistry
    authenticator: Authenticator
    policy: Policy
    #: Whether queues come from a queue.yaml file: they are then not created, changed or
    #: deleted through the API (CreateQueue of a declared one is ALREADY_EXISTS).
    from_file: bool = False
    #: How long the backend keeps a deleted task's name (the settings' tombstone_seconds):
    #: the one tombstone_ttl every queue has.
    tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS
    #: The largest LeaseTasks or ListTasks response, in bytes (0: no limit).
    max_response_bytes: int = 0

    @functools.cached_property
    def admission(self) -> Admission:
        """The gate's allow-list, authentication and ACLs, as every front asks them."""
        return Admission(self.queues, self.authenticator, self.policy)


@dataclass(frozen=True)
class Call:
    """One call: who makes it, and the v1 method whose ACL governs it."""

    front: Front
    identity: str | None
    acl: str

    @property
    def backend(self) -> Backend:
        return self.front.backend

    def queue(self, name: QueueName) -> Queue:
        """The backend queue a v2beta2 queue name is; its project must be served and the
        caller allowed (the gate's admission, as on v1)."""
        return self.front.admission.queue(self.identity, name.project, name.queue, self.acl)[0]

    def definable(self, name: QueueName) -> Queue:
        """A queue the API may create, change or delete: only without a queue.yaml."""
        if self.front.from_file:
            self.queue(name)  # NotFound for an undeclared one, after the caller's rights
            raise FailedPrecondition(f"Queue {name.queue} is defined by queue.yaml; change it there")
        return self.queue(name)

    def admin(self, project: str, what: str) -> str:
        """Calls about no single queue (ListQueues) are for the admins, on a project
        served; returns the project's key."""
        key = self.front.admission.project(project)
        self.front.admission.admin(self.identity, what, self.acl)
        return key


Handler = Callable[[Call, Any], Any]


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    #: The raw protobuf classes of the request and the response.
    request: Any
    response: Any
    #: The v1 method id whose queue.yaml ACL applies; a name `bridge.access.acl` does not know
    #: (``cloudtasks.CreateQueue``) is for admins only.
    acl: str


def invoke(front: Front, method: Method, request: Any, authorization: str | None) -> Any:
    """Run one method: credentials first, then the handler."""
    identity = front.admission.identify(authorization)
    return method.handler(Call(front, identity, method.acl), request)


# -- queues -------------------------------------------------------------------------

#: The most queues one ListQueues page holds (the protos).
MAX_QUEUE_PAGE = 9800


def _queue_reply(call: Call, name: str, queue: Queue, paths: list[str] | None = None) -> Any:
    info = call.backend.queue_info(queue, with_stats=paths is not None and "stats" in paths)
    return convert.queue_message(name, info, paths)


def get_queue(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.name)
    queue = call.queue(name)
    # A queue exists once declared, created, or used through either front; asking about
    # another is NOT_FOUND, as on Cloud Tasks (the project's Cloud Tasks backend then
    # creates it, with its max_attempts, where it may).
    if not call.front.from_file and queue.name not in {known.name for known in call.backend.list_queues(queue.project)}:
        raise NotFound(NOT_FOUND)
    return _queue_reply(call, name.text, queue, convert.read_mask(request))


def create_queue(call: Call, request: Any) -> Any:
    convert.location_name(request.parent)
    name = convert.queue_name(request.queue.name, "queue.name")
    if not request.queue.name.startswith(request.parent + "/queues/"):
        raise InvalidArgument(f"queue.name {request.queue.name!r} is not in {request.parent!r}")
    max_leases = convert.queue_change(request.queue, None, call.front.tombstone_seconds).max_leases
    if call.front.from_file:
        call.queue(name)  # NotFound for an undeclared one
        raise Duplicate(f"Queue {name.queue} exists: queue.yaml defines it")
    queue = call.queue(name)
    call.backend.create_queue(Queue(queue.project, queue.name, max_leases))
    return convert.queue_message(name.text, QueueInfo(max_leases))


def update_queue(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.queue.name, "queue.name")
    # No mask (or an empty one) updates every field (the protos).
    paths = convert.mask_paths(request.update_mask, "update_mask") if request.update_mask.paths else None
    change = convert.queue_change(request.queue, paths, call.front.tombstone_seconds)
    queue = call.definable(name)
    # UpdateQueue creates the queue it does not find (the protos).
    if not change.sets_attempts:
        with contextlib.suppress(Duplicate):
            call.backend.create_queue(queue)
        return _queue_reply(call, name.text, queue)
    changed = Queue(queue.project, queue.name, change.max_leases)
    try:
        call.backend.update_queue(changed)
    except NotFound:
        call.backend.create_queue(changed)
    return _queue_reply(call, name.text, queue)


def delete_queue(call: Call, request: Any) -> Any:
    call.backend.delete_queue(call.definable(convert.queue_name(request.name)))
    return empty_pb2.Empty()


def _queue_action(call: Call, request: Any, action: Callable[[Queue], object]) -> Any:
    """Purge, pause or resume, then describe the queue."""
    name = convert.queue_name(request.name)
    queue = call.queue(name)
    try:
        action(queue)
    except NotFound:
        if not call.front.from_file:
            raise
        # queue.yaml declares it, so it exists, though the backend has not met it yet.
        with contextlib.suppress(Duplicate):
            call.backend.create_queue(Queue(queue.project, queue.name))
        action(queue)
    return _queue_reply(call, name.text, queue)


def purge_queue(call: Call, request: Any) -> Any:
    return _queue_action(call, request, call.backend.purge_queue)


def pause_queue(call: Call, request: Any) -> Any:
    return _queue_action(call, request, call.backend.pause_queue)


def resume_queue(call: Call, request: Any) -> Any:
    return _queue_action(call, request, call.backend.resume_queue)


def list_queues(call: Call, request: Any) -> Any:
    project, _ = convert.location_name(request.parent)
    key = call.admin(project, request.parent)
    if request.filter:
        raise Unimplemented("ListQueues filter is not supported here; every queue here is a pull queue")
    if not 0 <= request.page_size <= MAX_QUEUE_PAGE:
        raise InvalidArgument(f"page_size must be between 0 and {MAX_QUEUE_PAGE}")
    paths = convert.read_mask(request)
    if call.front.from_file:
        queues = [Queue(project, c.name, c.max_leases) for c in call.front.queues.declared()]
    else:
        queues = call.backend.list_queues(key)
    # A queue made through the v1 API of a legacy-local bridge may hold '_', which no
    # Cloud Tasks name can: listing it would name a queue every other method refuses.
    names = sorted(queue.name for queue in queues if QUEUE_NAME.matches(queue.name))
    start = convert.page_start(names, request.page_token)
    page = names[start : start + (request.page_size or MAX_QUEUE_PAGE)]
    by_name = {queue.name: queue for queue in queues}
    response = ct.ListQueuesResponse.pb()()
    for queue_id in page:
        queue = by_name[queue_id]
        reply = _queue_reply(
            call, f"{request.parent}/queues/{queue_id}", Queue(key, queue_id, queue.max_leases), paths
        )
        response.queues.append(reply)
    if start + len(page) < len(names):
        response.next_page_token = convert.page_token(page[-1])
    return response


# -- tasks -------------------------------------------------------------------------


def create_task(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.parent, "parent")
    call.front.admission.project(name.project)  # a project not served is NOT_FOUND, as everywhere
    try:
        queue = call.queue(name)
    except NotFound:
        # CreateTask says so of a missing queue, and NOT_FOUND of nothing.
        raise FailedPrecondition(f"Queue does not exist: {request.parent}") from None
    payload, tag = convert.pull_message(request.task)
    task_id = entropy.task_id()
    if request.task.name:
        parent, task_id = convert.task_name(request.task.name, "task.name")
        if (parent.queue, parent.key) != (name.queue, name.key):
            raise InvalidArgument(f"task.name {request.task.name!r} is not in the queue {request.parent!r}")
    eta = convert.us_of(request.task.schedule_time) if request.task.HasField("schedule_time") else 0
    # "If schedule_time is not set or is in the past then Cloud Tasks will set it to the
    # current time" (CreateTaskRequest), where v1 keeps a past leaseTimestamp.
    task = call.backend.insert(
        queue, NewTask(task_id, payload, tag, max(eta, 0), not request.task.name, past_means_now=True)
    )
    return convert.task_message(task, name.text, convert.view_of(request.response_view))


def get_task(call: Call, request: Any) -> Any:
    name, task_id = convert.task_name(request.name)
    queue = call.queue(name)
    with convert.task_lookup():
        task = call.backend.get(queue, task_id)
    return convert.task_message(task, name.text, convert.view_of(request.response_view))


def delete_task(call: Call, request: Any) -> Any:
    name, task_id = convert.task_name(request.name)
    queue = call.queue(name)
    with convert.task_lookup():
        call.backend.delete(queue, task_id)
    return empty_pb2.Empty()


# -- response budgets (--max-response-bytes) ---------------------------------------

#: What a LeaseTasks or ListTasks response costs besides its tasks, at most.
FRAME_BYTES = 256


@functools.lru_cache(maxsize=1024)
def task_bytes(queue: str) -> int:
    """What a task costs in a response besides its id, tag and payload, at most: its JSON
    (the REST transport's; protobuf's is smaller) with the widest numbers, and room for
    separators."""
    last = 253402300799 * US + 999999  # the last µs a Timestamp holds
    widest = Task("", b"", "", last, last, 2**31 - 1)
    text = json_format.MessageToJson(convert.task_message(widest, queue, convert.FULL), indent=None)
    return len(text) + 64


def list_tasks(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.parent, "parent")
    view = convert.view_of(request.response_view)
    if not 0 <= request.page_size <= PAGE_LIMIT:
        raise InvalidArgument(f"page_size must be between 0 and {PAGE_LIMIT}")
    page = call.backend.list_tasks_page(
        call.queue(name),
        page_size=request.page_size or PAGE_LIMIT,
        page_token=request.page_token or None,
        with_payload=view == convert.FULL,
        # The page stops before the response budget (its first task is always in it);
        # the client pages on with next_page_token, as the protos allow.
        max_bytes=max(call.front.max_response_bytes - FRAME_BYTES, 1) if call.front.max_response_bytes else 0,
        task_bytes=task_bytes(name.text),
    )
    response = ct.ListTasksResponse.pb()(tasks=[convert.task_message(task, name.text, view) for task in page.tasks])
    response.next_page_token = page.next_page_token or ""
    return response


def lease_tasks(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.parent, "parent")
    if request.max_tasks not in NUM_TASKS:
        raise InvalidArgument(f"max_tasks must be between {NUM_TASKS.low} and {NUM_TASKS.high}")
    group_by_tag, tag = convert.lease_filter(request.filter)
    budget = call.front.max_response_bytes
    lease = LeaseRequest(
        request.max_tasks,
        convert.lease_seconds(request) * US,
        group_by_tag,
        tag,
        # Tasks past the response budget are not leased (they stay available).
        max_bytes=max(budget - FRAME_BYTES, 1) if budget else 0,
        task_bytes=task_bytes(name.text),
    )
    view = convert.view_of(request.response_view)
    queue = call.queue(name)
    tasks = call.backend.lease(queue, lease)
    if not tasks and call.backend.queue_info(queue, with_stats=False).paused:
        # The protos: LeaseTasks on a paused pull queue is FAILED_PRECONDITION.
        raise FailedPrecondition(f"Queue {name.queue} is paused")
    return ct.LeaseTasksResponse.pb()(tasks=[convert.task_message(task, name.text, view) for task in tasks])


def renew_lease(call: Call, request: Any) -> Any:
    name, task_id = convert.task_name(request.name)
    token, seconds = convert.lease_token(request), convert.lease_seconds(request)
    queue = call.queue(name)
    with convert.task_lookup():
        task = call.backend.modify_lease(queue, task_id, seconds * US, token)
    return convert.task_message(task, name.text, convert.view_of(request.response_view))


def cancel_lease(call: Call, request: Any) -> Any:
    name, task_id = convert.task_name(request.name)
    token, queue = convert.lease_token(request), call.queue(name)
    with convert.task_lookup():
        task = call.backend.modify_lease(queue, task_id, 0, token)
    return convert.task_message(task, name.text, convert.view_of(request.response_view))


def acknowledge_task(call: Call, request: Any) -> Any:
    name, task_id = convert.task_name(request.name)
    token, queue = convert.lease_token(request), call.queue(name)
    with convert.task_lookup():
        call.backend.delete(queue, task_id, token)
    return empty_pb2.Empty()


def _unimplemented(why: str) -> Handler:
    def refuse(call: Call, request: Any) -> Any:
        raise Unimplemented(why)

    return refuse


def _in_v2_words(handler: Handler) -> Handler:
    """The handler, its errors naming v2beta2 fields where the backends name v1 ones."""

    def handle(call: Call, request: Any) -> Any:
        try:
            return handler(call, request)
        except ApiError as exc:
            convert.in_v2_words(exc)
            raise

    return handle


def _method(name: str, handler: Handler, request: Any, response: Any, acl: str = "cloudtasks.admin") -> Method:
    pb = getattr(request, "pb", None)
    out = getattr(response, "pb", None)
    return Method(name, _in_v2_words(handler), pb() if pb else request, out() if out else response, acl)


_PUSH = "RunTask dispatches push tasks; pull queues are leased with LeaseTasks"
_IAM = "IAM policies are not kept here; access comes from queue.yaml ACLs and --admins"
_YAML = "queue.yaml is read when the bridge starts (--queues); it is not uploaded"

METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        _method("ListQueues", list_queues, ct.ListQueuesRequest, ct.ListQueuesResponse, "cloudtasks.ListQueues"),
        _method("GetQueue", get_queue, ct.GetQueueRequest, ct.Queue, "taskqueue.taskqueues.get"),
        _method("CreateQueue", create_queue, ct.CreateQueueRequest, ct.Queue, "cloudtasks.CreateQueue"),
        _method("UpdateQueue", update_queue, ct.UpdateQueueRequest, ct.Queue, "cloudtasks.UpdateQueue"),
        _method("DeleteQueue", delete_queue, ct.DeleteQueueRequest, empty_pb2.Empty, "cloudtasks.DeleteQueue"),
        _method("PurgeQueue", purge_queue, ct.PurgeQueueRequest, ct.Queue, "cloudtasks.PurgeQueue"),
        _method("PauseQueue", pause_queue, ct.PauseQueueRequest, ct.Queue, "cloudtasks.PauseQueue"),
        _method("ResumeQueue", resume_queue, ct.ResumeQueueRequest, ct.Queue, "cloudtasks.ResumeQueue"),
        _method("CreateTask", create_task, ct.CreateTaskRequest, ct.Task, "taskqueue.tasks.insert"),
        _method("GetTask", get_task, ct.GetTaskRequest, ct.Task, "taskqueue.tasks.get"),
        _method("ListTasks", list_tasks, ct.ListTasksRequest, ct.ListTasksResponse, "taskqueue.tasks.list"),
        _method("DeleteTask", delete_task, ct.DeleteTaskRequest, empty_pb2.Empty, "taskqueue.tasks.delete"),
        _method("LeaseTasks", lease_tasks, ct.LeaseTasksRequest, ct.LeaseTasksResponse, "taskqueue.tasks.lease"),
        _method("RenewLease", renew_lease, ct.RenewLeaseRequest, ct.Task, "taskqueue.tasks.update"),
        _method("CancelLease", cancel_lease, ct.CancelLeaseRequest, ct.Task, "taskqueue.tasks.update"),
        _method(
            "AcknowledgeTask", acknowledge_task, ct.AcknowledgeTaskRequest, empty_pb2.Empty, "taskqueue.tasks.delete"
        ),
        _method("RunTask", _unimplemented(_PUSH), ct.RunTaskRequest, ct.Task),
        _method("UploadQueueYaml", _unimplemented(_YAML), ct.UploadQueueYamlRequest, empty_pb2.Empty),
        _method("GetIamPolicy", _unimplemented(_IAM), iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy),
        _method("SetIamPolicy", _unimplemented(_IAM), iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy),
        _method(
            "TestIamPermissions",
            _unimplemented(_IAM),
            iam_policy_pb2.TestIamPermissionsRequest,
            iam_policy_pb2.TestIamPermissionsResponse,
        ),
    )
}
