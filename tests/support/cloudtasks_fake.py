"""A fake Cloud Tasks v2beta2 service: a real gRPC server the official client talks to.

It serves ``google.cloud.tasks.v2beta2.CloudTasks`` with the client library's own message
classes, and holds to what the v2beta2 reference documents, strictly, so that the bridge
meets here every rule it will meet in Google's service:

- a renew, cancel or acknowledge must carry the task's current ``schedule_time``
  exactly, and the lease must still run (else FAILED_PRECONDITION);
- BASIC views (the default) carry no payload; ``create_time`` is cut to the second,
  ``schedule_time`` to the microsecond, lease durations to the second;
- resource names follow the documented patterns; a created or deleted name stays
  reserved for the queue's ``tombstone_ttl`` (default one hour);
- ``max_tasks`` is 1 to 1000, a lease lasts at most a week, a task is scheduled at most
  30 days ahead; ListTasks pages hold at most 1000 tasks in no particular order;
- LeaseTasks over 10 calls a second on one queue answers RESOURCE_EXHAUSTED;
- a task leased ``retry_config.max_attempts`` times is deleted instead of leased again;
- CreateTask on a missing queue answers FAILED_PRECONDITION "Queue does not exist.";
- LeaseTasks on a paused queue answers FAILED_PRECONDITION; UpdateQueue creates a
  missing queue; a deleted queue's name cannot be created again for 7 days; PurgeQueue
  deletes the tasks created before it (their names stay reserved, as deleted tasks'
  do) and sets ``purge_time``; ListQueues pages hold at most 9800 queues.

Where the reference is silent the fake's choice is marked **assumed** (in `cloudtasks_model`). Its clock is the
machine's plus an offset that tests move with `FakeCloudTasks.advance` (it can also be
frozen), and `FakeCloudTasks.fail` makes the next calls fail with a chosen error class.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

import grpc
from google.api_core import exceptions
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, empty_pb2

from tests.support.cloudtasks_model import (
    ALREADY_EXISTS,
    DEFAULT_TOMBSTONE_US,
    DELETED_QUEUE_US,
    LEASE_CALLS_PER_SECOND,
    LOCATION_NAME,
    MAX_LEASE_RESPONSE_BYTES,
    MAX_LEASE_US,
    MAX_PAYLOAD_BYTES,
    MAX_QUEUES_PAGE,
    MAX_SCHEDULE_AHEAD_US,
    MAX_TAG_BYTES,
    MAX_TASKS_PAGE,
    NOT_FOUND,
    NOT_LEASED,
    PAUSED,
    QUEUE_FIELDS,
    QUEUE_NAME,
    QUEUE_RECENTLY_DELETED,
    TAG_FILTER,
    TASK_NAME,
    TOMBSTONED,
    US,
    FakeClock,
    Fault,
    Refused,
    StoredQueue,
    StoredTask,
    apply_queue_fields,
    invalid,
    page_start,
    seconds_of,
    stamp,
    us_of,
)

SERVICE = "google.cloud.tasks.v2beta2.CloudTasks"


class FakeCloudTasks:
    """The service's state and its gRPC server; `start` returns once it listens."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.queues: dict[str, StoredQueue] = {}
        #: deleted queue name -> until when it cannot be created again (µs)
        self.deleted_queues: dict[str, int] = {}
        #: Every method called, in order (faults included), for tests to count retries.
        self.calls: list[str] = []
        #: LeaseTasks calls allowed per second and queue; None switches the limit off.
        self.lease_rate_limit: int | None = LEASE_CALLS_PER_SECOND
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self.address = ""

    # -- test controls --------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def fail(
        self,
        error: type[exceptions.GoogleAPICallError],
        *,
        times: int = 1,
        methods: Iterable[str] | None = None,
        after: bool = False,
    ) -> None:
        """Make the next ``times`` calls (of ``methods``, or any) fail with ``error``'s
        status; with ``after`` the call takes effect first, as when a reply is lost."""
        chosen = frozenset(methods) if methods is not None else None
        with self._lock:
            self._faults.append(Fault(error, chosen, times, after))

    def add_queue(self, location: str, queue_id: str, *, max_attempts: int | None = None, pull: bool = True) -> str:
        name = f"{location}/queues/{queue_id}"
        with self._lock:
            self.queues[name] = StoredQueue(name, pull, max_attempts, DEFAULT_TOMBSTONE_US)
        return name

    # -- the server ---------------------------------------------------------------

    def start(self) -> FakeCloudTasks:
        self._executor = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-cloudtasks")
        limits = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        server = grpc.server(self._executor, options=limits)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, self._handlers()),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
            # grpc leaves its executor to the caller; a suite starts hundreds of fakes.
            assert self._executor is not None
            self._executor.shutdown(wait=True)

    def _handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        table: list[tuple[str, Callable[[Any], Any], Any, Callable[[Any], bytes]]] = [
            ("CreateQueue", self._create_queue, ct.CreateQueueRequest, ct.Queue.serialize),
            ("GetQueue", self._get_queue, ct.GetQueueRequest, ct.Queue.serialize),
            ("ListQueues", self._list_queues, ct.ListQueuesRequest, ct.ListQueuesResponse.serialize),
            ("UpdateQueue", self._update_queue, ct.UpdateQueueRequest, ct.Queue.serialize),
            ("DeleteQueue", self._delete_queue, ct.DeleteQueueRequest, empty_pb2.Empty.SerializeToString),
            ("PurgeQueue", self._purge_queue, ct.PurgeQueueRequest, ct.Queue.serialize),
            ("PauseQueue", self._pause_queue, ct.PauseQueueRequest, ct.Queue.serialize),
            ("ResumeQueue", self._resume_queue, ct.ResumeQueueRequest, ct.Queue.serialize),
            ("CreateTask", self._create_task, ct.CreateTaskRequest, ct.Task.serialize),
            ("GetTask", self._get_task, ct.GetTaskRequest, ct.Task.serialize),
            ("ListTasks", self._list_tasks, ct.ListTasksRequest, ct.ListTasksResponse.serialize),
            ("DeleteTask", self._delete_task, ct.DeleteTaskRequest, empty_pb2.Empty.SerializeToString),
            ("LeaseTasks", self._lease_tasks, ct.LeaseTasksRequest, ct.LeaseTasksResponse.serialize),
            ("AcknowledgeTask", self._acknowledge, ct.AcknowledgeTaskRequest, empty_pb2.Empty.SerializeToString),
            ("RenewLease", self._renew_lease, ct.RenewLeaseRequest, ct.Task.serialize),
            ("CancelLease", self._cancel_lease, ct.CancelLeaseRequest, ct.Task.serialize),
        ]
        return {
            method: grpc.unary_unary_rpc_method_handler(
                self._serving(method, implementation),
                request_deserializer=request_class.deserialize,
                response_serializer=serialize,
            )
            for method, implementation, request_class, serialize in table
        }

    def _serving(self, method: str, implementation: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.calls.append(method)
                fault = self._take_fault(method)
                if fault is not None and not fault.after:
                    context.abort(fault.error.grpc_status_code, f"injected {fault.error.__name__}")
                try:
                    response = implementation(request)
                except Refused as refused:
                    context.abort(refused.code, refused.message)
            if fault is not None:
                context.abort(fault.error.grpc_status_code, f"injected {fault.error.__name__} after the call")
            return response

        return serve

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.methods is None or method in fault.methods:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- helpers --------------------------------------------------------------------

    def _now(self) -> int:
        return self.clock.now_us()

    def _queue(self, name: str, *, missing: grpc.StatusCode = grpc.StatusCode.NOT_FOUND) -> StoredQueue:
        if not QUEUE_NAME.match(name):
            raise invalid(f"Invalid queue name: {name!r}")
        queue = self.queues.get(name)
        if queue is None:
            message = "Queue does not exist." if missing is grpc.StatusCode.FAILED_PRECONDITION else NOT_FOUND
            raise Refused(missing, message)
        return queue

    def _task(self, name: str) -> tuple[StoredQueue, StoredTask]:
        match = TASK_NAME.match(name)
        if match is None:
            raise invalid(f"Invalid task name: {name!r}")
        queue = self._queue(match.group(1))
        task = queue.tasks.get(name)
        if task is None:
            self._expire_tombstones(queue)
            raise Refused(grpc.StatusCode.NOT_FOUND, TOMBSTONED if queue.reserved(name, self._now()) else NOT_FOUND)
        return queue, task

    def _expire_tombstones(self, queue: StoredQueue) -> None:
        now = self._now()
        for name in [name for name, until in queue.tombstones.items() if until <= now]:
            del queue.tombstones[name]

    def _remove(self, queue: StoredQueue, task: StoredTask) -> None:
        del queue.tasks[task.name]
        queue.tombstones[task.name] = self._now() + queue.tombstone_us

    @staticmethod
    def _render(task: StoredTask, view: int) -> ct.Task:
        full = view == ct.Task.View.FULL
        message = ct.Task(
            name=task.name,
            pull_message=ct.PullMessage(payload=task.payload if full else b"", tag=task.tag),
            schedule_time=stamp(task.schedule_us),
            create_time=stamp(task.create_us),
            status=ct.TaskStatus(attempt_dispatch_count=task.dispatches),
            view=ct.Task.View.FULL if full else ct.Task.View.BASIC,
        )
        return message

    def _fence(self, request: Any) -> tuple[StoredQueue, StoredTask]:
        """The lease check of renew, cancel and acknowledge."""
        queue, task = self._task(request.name)
        raw = type(request).pb(request)
        if not raw.HasField("schedule_time"):
            raise invalid("schedule_time is required")
        if us_of(raw.schedule_time) != task.schedule_us or task.schedule_us <= self._now():
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, NOT_LEASED)
        return queue, task

    @staticmethod
    def _lease_seconds(request: Any) -> int:
        raw = type(request).pb(request)
        if not raw.HasField("lease_duration"):
            raise invalid("lease_duration is required")
        seconds = seconds_of(raw.lease_duration)
        if seconds < 0 or seconds * US > MAX_LEASE_US:
            raise invalid("lease_duration must be between 0 and 1 week")
        return seconds

    # -- queues ---------------------------------------------------------------------

    def _create_queue(self, request: ct.CreateQueueRequest) -> ct.Queue:
        if not LOCATION_NAME.match(request.parent):
            raise invalid(f"Invalid location name: {request.parent!r}")
        raw = ct.Queue.pb(request.queue)
        if not QUEUE_NAME.match(raw.name) or not raw.name.startswith(request.parent + "/queues/"):
            raise invalid(f"Invalid queue name: {raw.name!r}")
        if raw.name in self.queues:
            raise Refused(grpc.StatusCode.ALREADY_EXISTS, ALREADY_EXISTS)
        queue = self._new_queue(raw.name)
        apply_queue_fields(queue, raw, None)
        self.queues[raw.name] = queue
        return self._render_queue(queue, None)

    def _new_queue(self, name: str) -> StoredQueue:
        if self.deleted_queues.get(name, 0) > self._now():
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, QUEUE_RECENTLY_DELETED)
        return StoredQueue(name, False, None, DEFAULT_TOMBSTONE_US)

    def _render_queue(self, queue: StoredQueue, paths: list[str] | None) -> ct.Queue:
        retry = (
            ct.RetryConfig(max_attempts=queue.max_attempts)
            if queue.max_attempts
            else ct.RetryConfig(unlimited_attempts=True)
        )
        full = ct.Queue(
            name=queue.name,
            retry_config=retry,
            state=queue.state,
            tombstone_ttl=duration_pb2.Duration(seconds=queue.tombstone_us // US),
        )
        if queue.pull:
            full.pull_target = ct.PullTarget()
        else:
            full.app_engine_http_target = ct.AppEngineHttpTarget()
        if queue.purge_us is not None:
            full.purge_time = stamp(queue.purge_us)
        if paths is None:
            return full
        chosen = ct.Queue()
        for path in paths:
            if path == "stats":
                live = queue.tasks.values()
                oldest = min((task.schedule_us for task in live), default=None)
                stats = ct.QueueStats(tasks_count=len(queue.tasks))
                if oldest is not None:
                    stats.oldest_estimated_arrival_time = stamp(oldest)
                chosen.stats = stats
            else:
                setattr(chosen, path, getattr(full, path))
        return chosen

    def _get_queue(self, request: ct.GetQueueRequest) -> ct.Queue:
        queue = self._queue(request.name)
        raw = ct.GetQueueRequest.pb(request)
        if not raw.HasField("read_mask"):
            return self._render_queue(queue, None)
        paths = list(raw.read_mask.paths)
        unknown = [path for path in paths if path not in QUEUE_FIELDS]
        if unknown:
            raise invalid(f"Invalid read_mask paths: {', '.join(unknown)}")
        return self._render_queue(queue, paths)

    def _list_queues(self, request: ct.ListQueuesRequest) -> ct.ListQueuesResponse:
        if not LOCATION_NAME.match(request.parent):
            raise invalid(f"Invalid location name: {request.parent!r}")
        if request.filter:
            raise invalid("This fake implements no ListQueues filter")
        if not 0 <= request.page_size <= MAX_QUEUES_PAGE:
            raise invalid(f"page_size must be at most {MAX_QUEUES_PAGE}")
        found = [q for name, q in sorted(self.queues.items()) if name.startswith(request.parent + "/queues/")]
        start, size = page_start(request.page_token), request.page_size or MAX_QUEUES_PAGE
        following = str(start + size) if start + size < len(found) else ""
        raw = ct.ListQueuesRequest.pb(request)
        paths = list(raw.read_mask.paths) if raw.HasField("read_mask") else None
        page = [self._render_queue(q, paths) for q in found[start : start + size]]
        return ct.ListQueuesResponse(queues=page, next_page_token=following)

    def _update_queue(self, request: ct.UpdateQueueRequest) -> ct.Queue:
        raw = ct.Queue.pb(request.queue)
        if not QUEUE_NAME.match(raw.name):
            raise invalid(f"Invalid queue name: {raw.name!r}")
        # "This method creates the queue if it does not exist."
        queue = self.queues.get(raw.name) or self._new_queue(raw.name)
        mask = ct.UpdateQueueRequest.pb(request).update_mask
        apply_queue_fields(queue, raw, list(mask.paths) or None)
        self.queues[raw.name] = queue
        return self._render_queue(queue, None)

    def _delete_queue(self, request: ct.DeleteQueueRequest) -> empty_pb2.Empty:
        queue = self._queue(request.name)
        del self.queues[queue.name]
        self.deleted_queues[queue.name] = self._now() + DELETED_QUEUE_US
        return empty_pb2.Empty()

    def _purge_queue(self, request: ct.PurgeQueueRequest) -> ct.Queue:
        queue = self._queue(request.name)
        now = self._now()
        # "All tasks created before this method is called are permanently deleted."
        for task in [task for task in queue.tasks.values() if task.create_us <= now]:
            self._remove(queue, task)
        queue.purge_us = now
        return self._render_queue(queue, None)

    def _pause_queue(self, request: ct.PauseQueueRequest) -> ct.Queue:
        queue = self._queue(request.name)
        queue.state = ct.Queue.State.PAUSED
        return self._render_queue(queue, None)

    def _resume_queue(self, request: ct.ResumeQueueRequest) -> ct.Queue:
        queue = self._queue(request.name)
        queue.state = ct.Queue.State.RUNNING
        return self._render_queue(queue, None)

    # -- tasks ----------------------------------------------------------------------

    def _create_task(self, request: ct.CreateTaskRequest) -> ct.Task:
        queue = self._queue(request.parent, missing=grpc.StatusCode.FAILED_PRECONDITION)
        raw = ct.Task.pb(request.task)
        if raw.WhichOneof("payload_type") != "pull_message":
            raise invalid("A task in this fake must carry a pull_message")
        if not queue.pull:
            raise invalid("A pull_message can only be added to a pull queue")
        now = self._now()
        name = raw.name or f"{queue.name}/tasks/{secrets.randbelow(10**19):019d}"
        match = TASK_NAME.match(name)
        if match is None or match.group(1) != queue.name:
            raise invalid(f"Invalid task name: {name!r} (it must sit under {queue.name})")
        self._expire_tombstones(queue)
        if name in queue.tasks or queue.reserved(name, now):
            raise Refused(grpc.StatusCode.ALREADY_EXISTS, ALREADY_EXISTS)
        if len(raw.pull_message.payload) > MAX_PAYLOAD_BYTES:
            raise invalid("Task size too large: the maximum for a pull task is 1MB")
        if len(raw.pull_message.tag.encode()) > MAX_TAG_BYTES:
            raise invalid("The tag must be less than 500 characters")
        schedule = us_of(raw.schedule_time) if raw.HasField("schedule_time") else now
        if schedule > now + MAX_SCHEDULE_AHEAD_US:
            raise invalid("schedule_time must be at most 30 days in the future")
        task = StoredTask(name, raw.pull_message.payload, raw.pull_message.tag, now // US * US, max(schedule, now))
        queue.tasks[name] = task
        return self._render(task, request.response_view)

    def _get_task(self, request: ct.GetTaskRequest) -> ct.Task:
        _, task = self._task(request.name)
        return self._render(task, request.response_view)

    def _list_tasks(self, request: ct.ListTasksRequest) -> ct.ListTasksResponse:
        queue = self._queue(request.parent)
        if not 0 <= request.page_size <= MAX_TASKS_PAGE:
            raise invalid(f"page_size must be at most {MAX_TASKS_PAGE}")
        size = request.page_size or MAX_TASKS_PAGE
        # The reference promises no order; a hash of the name gives one that is stable
        # and unrelated to schedule_time, so that no caller can come to rely on one.
        ordered = sorted(queue.tasks.values(), key=lambda t: hashlib.sha256(t.name.encode()).digest())
        start = page_start(request.page_token)
        page = ordered[start : start + size]
        following = str(start + size) if start + size < len(ordered) else ""
        return ct.ListTasksResponse(
            tasks=[self._render(task, request.response_view) for task in page], next_page_token=following
        )

    def _delete_task(self, request: ct.DeleteTaskRequest) -> empty_pb2.Empty:
        queue, task = self._task(request.name)
        self._remove(queue, task)
        return empty_pb2.Empty()

    def _lease_tasks(self, request: ct.LeaseTasksRequest) -> ct.LeaseTasksResponse:
        queue = self._queue(request.parent)
        if not 1 <= request.max_tasks <= 1000:
            raise invalid("max_tasks must be between 1 and 1000")
        seconds = self._lease_seconds(request)
        pick = self._lease_filter(request.filter)
        if queue.state != ct.Queue.State.RUNNING:
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, PAUSED)
        now = self._now()
        if self.lease_rate_limit is not None:
            queue.lease_calls = [at for at in queue.lease_calls if at > now - US]
            if len(queue.lease_calls) >= self.lease_rate_limit:
                raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded: at most 10 LeaseTasks a second")
            queue.lease_calls.append(now)
        ready = sorted((t for t in queue.tasks.values() if t.schedule_us <= now), key=lambda t: (t.schedule_us, t.name))
        if pick == ("oldest",):
            pick = ("tag", ready[0].tag) if ready else ("none",)
        leased: list[StoredTask] = []
        size = 0
        for task in ready:
            if len(leased) == request.max_tasks:
                break
            if pick[0] == "tag" and task.tag != pick[1]:
                continue
            if queue.max_attempts is not None and task.dispatches >= queue.max_attempts:
                self._remove(queue, task)
                continue
            size += len(task.payload)
            if leased and size > MAX_LEASE_RESPONSE_BYTES:
                break
            task.schedule_us = now + seconds * US
            task.dispatches += 1
            leased.append(task)
        return ct.LeaseTasksResponse(tasks=[self._render(task, request.response_view) for task in leased])

    @staticmethod
    def _lease_filter(text: str) -> tuple[str, ...]:
        if text == "":
            return ("all",)
        if text == "tag_function=oldest_tag()":
            return ("oldest",)
        match = TAG_FILTER.match(text)
        if match is None:
            raise invalid(f"Invalid filter: {text!r}")
        tag = re.sub(r"\\(.)", r"\1", match.group(1)) if match.group(1) is not None else match.group(2)
        if len(tag.encode()) > MAX_TAG_BYTES:
            raise invalid("The tag in the filter must be less than 500 characters")
        return ("tag", tag)

    def _acknowledge(self, request: ct.AcknowledgeTaskRequest) -> empty_pb2.Empty:
        queue, task = self._fence(request)
        self._remove(queue, task)
        return empty_pb2.Empty()

    def _renew_lease(self, request: ct.RenewLeaseRequest) -> ct.Task:
        _, task = self._fence(request)
        task.schedule_us = self._now() + self._lease_seconds(request) * US
        return self._render(task, request.response_view)

    def _cancel_lease(self, request: ct.CancelLeaseRequest) -> ct.Task:
        _, task = self._fence(request)
        task.schedule_us = self._now()
        return self._render(task, request.response_view)
