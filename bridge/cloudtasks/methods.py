"""The handlers of the Cloud Tasks v2beta2 methods, one per RPC, and the table of them.

Each takes a `Call` and the request message and returns the response message: translate,
call the backend, translate back. Both transports (`bridge.cloudtasks.grpc_server`,
`bridge.cloudtasks.rest`) call `invoke`, so a method is written once.

Access: each method is governed by the queue.yaml ACL of the v1 method it amounts to
(CreateTask is tasks.insert, LeaseTasks tasks.lease, …); queue administration is for the
admins (``--admins``) alone, as `bridge.acl` gives methods it does not name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.cloud import tasks_v2beta2 as ct
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from backends.base import Backend, LeaseRequest, NewTask, Queue
from backends.errors import InvalidArgument, NotFound
from bridge.acl import Policy
from bridge.auth import Authenticator
from bridge.cloudtasks import convert
from bridge.cloudtasks.convert import US, FailedPrecondition, QueueName, Unimplemented
from bridge.queues import QueueRegistry
from bridge.wire import new_task_id

SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"
#: The most tasks one LeaseTasks call may ask for (the protos).
MAX_LEASE_TASKS = 1000


@dataclass(frozen=True)
class Front:
    """What every call needs: the bridge's backend, queue definitions and access rules."""

    backend: Backend
    queues: QueueRegistry
    authenticator: Authenticator
    policy: Policy


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
        """The backend queue a v2beta2 queue name is; the caller must be allowed."""
        config = self.front.queues.resolve(name.queue)
        self.front.policy.check(self.identity, config, self.acl)
        return Queue(name.key, config.name, config.max_leases)


Handler = Callable[[Call, Any], Any]


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    #: The raw protobuf classes of the request and the response.
    request: Any
    response: Any
    #: The v1 method id whose queue.yaml ACL applies ("" for admins only).
    acl: str


def invoke(front: Front, method: Method, request: Any, authorization: str | None) -> Any:
    """Run one method: credentials first, then the handler."""
    identity = front.authenticator.identify(authorization)
    return method.handler(Call(front, identity, method.acl), request)


# -- queues -------------------------------------------------------------------------


def get_queue(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.name)
    paths = convert.read_mask(request)
    info = call.backend.queue_info(call.queue(name), with_stats=paths is not None and "stats" in paths)
    return convert.queue_message(name.text, info, paths)


# -- tasks -------------------------------------------------------------------------


def create_task(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.parent, "parent")
    try:
        queue = call.queue(name)
    except NotFound:
        # CreateTask says so of a missing queue, and NOT_FOUND of nothing.
        raise FailedPrecondition(f"Queue does not exist: {request.parent}") from None
    payload, tag = convert.pull_message(request.task)
    task_id = new_task_id()
    if request.task.name:
        parent, task_id = convert.task_name(request.task.name, "task.name")
        if (parent.queue, parent.key) != (name.queue, name.key):
            raise InvalidArgument(f"task.name {request.task.name!r} is not in the queue {request.parent!r}")
    eta = convert.us_of(request.task.schedule_time) if request.task.HasField("schedule_time") else 0
    task = call.backend.insert(queue, NewTask(task_id, payload, tag, max(eta, 0)))
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


def list_tasks(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.parent, "parent")
    view = convert.view_of(request.response_view)
    tasks = call.backend.list_tasks(call.queue(name))
    return ct.ListTasksResponse.pb()(tasks=[convert.task_message(task, name.text, view) for task in tasks])


def lease_tasks(call: Call, request: Any) -> Any:
    name = convert.queue_name(request.parent, "parent")
    if not 1 <= request.max_tasks <= MAX_LEASE_TASKS:
        raise InvalidArgument(f"max_tasks must be between 1 and {MAX_LEASE_TASKS}")
    group_by_tag, tag = convert.lease_filter(request.filter)
    lease = LeaseRequest(request.max_tasks, convert.lease_seconds(request) * US, group_by_tag, tag)
    view = convert.view_of(request.response_view)
    tasks = call.backend.lease(call.queue(name), lease)
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


def _method(name: str, handler: Handler, request: Any, response: Any, acl: str = "") -> Method:
    pb = getattr(request, "pb", None)
    out = getattr(response, "pb", None)
    return Method(name, handler, pb() if pb else request, out() if out else response, acl)


_PUSH = "RunTask dispatches push tasks; pull queues are leased with LeaseTasks"
_IAM = "IAM policies are not kept here; access comes from queue.yaml ACLs and --admins"

METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        _method("GetQueue", get_queue, ct.GetQueueRequest, ct.Queue, "taskqueue.taskqueues.get"),
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
