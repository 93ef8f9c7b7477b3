"""Cloud Tasks v2beta2 names and messages to backend values and back; errors to status codes.

Names: ``projects/P/locations/L/queues/Q`` is the v1 queue ``projects/P/taskqueues/Q``.
P may carry a partition prefix (``s~app`` and ``app`` are one queue) and L is any
location: the backend stores a queue by (project without prefix, queue id). Responses
echo the names the caller used.

Messages are the raw protobuf classes of ``google.cloud.tasks_v2beta2`` (``ct.Task.pb()``),
which both transports (de)serialise without proto-plus's wrappers.

Errors: a backend or front error becomes the canonical code Google's service uses, which
the gRPC transport sends as the status and the REST transport as HTTP status plus
``error.status``::

    Unimplemented (push-only features),    UNIMPLEMENTED        501
      Unsupported (a backend without the verb)
    FailedPrecondition (paused queue, …)   FAILED_PRECONDITION  400
    Duplicate                              ALREADY_EXISTS       409
    Conflict (lease lost: stale schedule_time)  FAILED_PRECONDITION  400
    InvalidArgument                        INVALID_ARGUMENT     400
    NotFound                               NOT_FOUND            404
    Unauthenticated                        UNAUTHENTICATED      401
    PermissionDenied                       PERMISSION_DENIED    403
    Unavailable                            UNAVAILABLE          503
    DeadlineExceeded (the caller's passed) DEADLINE_EXCEEDED    504
    any other ApiError                     INTERNAL             500
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.cloud import tasks_v2beta2 as ct

from backends.base import QueueInfo, Task
from backends.cloudtasks.errors import NOT_FOUND
from backends.errors import (
    ApiError,
    Conflict,
    Deleted,
    Duplicate,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Unsupported,
)
from backends.limits import LEASE_SECONDS, MAX_PAYLOAD_BYTES, QUEUE_NAME, TASK_ID, US, check_tag, project_key
from bridge.errors import DeadlineExceeded

TaskMessage: Any = ct.Task.pb()
QueueMessage: Any = ct.Queue.pb()
FULL = int(ct.Task.View.FULL)
BASIC = int(ct.Task.View.BASIC)

_QUEUE = re.compile(r"projects/([^/]+)/locations/([^/]+)/queues/([^/]+)")
_TASK = re.compile(r"(projects/[^/]+/locations/[^/]+/queues/[^/]+)/tasks/([^/]+)")
_LOCATION = re.compile(r"projects/([^/]+)/locations/([^/]+)")


class FailedPrecondition(ApiError):
    """The resource is in a state the call cannot act on (a paused queue, a missing one
    on CreateTask)."""

    status = 400
    reason = "failedPrecondition"


class Unimplemented(ApiError):
    """A Cloud Tasks feature of push queues, which this front does not serve."""

    status = 501
    reason = "notImplemented"


_CODES: tuple[tuple[type[ApiError], grpc.StatusCode], ...] = (
    (Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (Unsupported, grpc.StatusCode.UNIMPLEMENTED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Duplicate, grpc.StatusCode.ALREADY_EXISTS),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
)
#: Google's HTTP mapping of the canonical codes (google/rpc/code.proto).
HTTP_STATUS = {
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.INTERNAL: 500,
}


def code_of(exc: ApiError) -> grpc.StatusCode:
    """The canonical code an API error is reported with."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


#: Cloud Tasks' words for a task deleted recently; NOT_FOUND, for one it does not have, is
#: what the project's Cloud Tasks backend reads as "no more to say".
TOMBSTONED = (
    "The task no longer exists, though a task with this name existed recently. "
    "The task either successfully completed or was deleted."
)


@contextlib.contextmanager
def task_lookup() -> Iterator[None]:
    """Report a task the backend does not find in Cloud Tasks' words."""
    try:
        yield
    except Deleted as exc:
        raise NotFound(TOMBSTONED) from exc
    except NotFound as exc:
        raise NotFound(NOT_FOUND) from exc


#: The v1beta2 names the backends give fields in their errors, and the v2beta2 field each is.
V2_FIELDS = {
    "leaseTimestamp": "schedule_time",
    "maxLeases": "retry_config.max_attempts",
    "payloadBase64": "pull_message.payload",
    "numTasks": "max_tasks",
    "leaseSecs": "lease_duration",
    "newLeaseSeconds": "lease_duration",
    "groupByTag": "filter",
    "pageToken": "page_token",
    "queueName": "queue",
}
_V1_FIELD = re.compile(r"\b(?:" + "|".join(V2_FIELDS) + r")\b")


def in_v2_words(exc: ApiError) -> None:
    """Word ``exc`` as this front reports it: the v1 field names in its message and
    location become the v2beta2 fields they are (the backends' leaseTimestamp too far
    ahead is a schedule_time too far ahead)."""
    message = _V1_FIELD.sub(lambda v1: V2_FIELDS[v1.group()], exc.message)
    if message != exc.message:
        exc.message = message
        exc.args = (message, *exc.args[1:])
    if exc.location in V2_FIELDS:
        exc.location = V2_FIELDS[exc.location]


# -- names -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueName:
    """A v2beta2 queue name, split: ``text`` is the name as the caller wrote it."""

    text: str
    project: str
    location: str
    queue: str

    @property
    def key(self) -> str:
        """The project as the backend stores it (no partition prefix)."""
        return project_key(self.project)


def location_name(text: str, field: str = "parent") -> tuple[str, str]:
    """(project, location) of ``projects/P/locations/L``; INVALID_ARGUMENT otherwise."""
    match = _LOCATION.fullmatch(text)
    if match is None:
        raise InvalidArgument(f"Invalid {field} {text!r}: expected projects/PROJECT/locations/LOCATION")
    project_key(match.group(1))
    return match.group(1), match.group(2)


def queue_name(text: str, field: str = "name") -> QueueName:
    match = _QUEUE.fullmatch(text)
    if match is None or not QUEUE_NAME.matches(match.group(3)):
        raise InvalidArgument(
            f"Invalid {field} {text!r}: expected projects/PROJECT/locations/LOCATION/queues/QUEUE "
            f"(QUEUE: {QUEUE_NAME.described})"
        )
    name = QueueName(text, *match.groups())
    name.key  # noqa: B018  (refuses a malformed project here)
    return name


def task_name(text: str, field: str = "name") -> tuple[QueueName, str]:
    match = _TASK.fullmatch(text)
    if match is None or not TASK_ID.matches(match.group(2)):
        raise InvalidArgument(
            f"Invalid {field} {text!r}: expected projects/PROJECT/locations/LOCATION/queues/QUEUE/tasks/TASK "
            f"(TASK: {TASK_ID.described})"
        )
    return queue_name(match.group(1), field), match.group(2)


# -- messages ------------------------------------------------------------------------


def view_of(view: int) -> int:
    """The view a response is rendered in; BASIC unless FULL was asked for."""
    if view not in (0, BASIC, FULL):
        raise InvalidArgument(f"Invalid response_view {view}")
    return FULL if view == FULL else BASIC


def task_message(task: Task, queue: str, view: int) -> Any:
    """A Task message; the payload only in the FULL view, create_time cut to the second."""
    message = TaskMessage(name=f"{queue}/tasks/{task.id}", view=view)
    message.pull_message.SetInParent()
    message.pull_message.tag = task.tag or ""
    if view == FULL and task.payload:
        message.pull_message.payload = task.payload
    message.schedule_time.FromMicroseconds(task.eta_us)
    message.create_time.FromSeconds(task.enqueue_us // US)
    message.status.attempt_dispatch_count = task.retry_count
    return message


_SNAKE = re.compile(r"[A-Z]")


def mask_paths(mask: Any, field: str) -> list[str]:
    """A FieldMask's paths in the protos' spelling, each a path of Queue.

    Both spellings are taken, as Google's front end takes them: ``retryConfig.maxAttempts``
    (JSON's, what gcloud sends) and ``retry_config.max_attempts`` (the protos', what the
    Node.js client sends over REST too).
    """
    paths = [_SNAKE.sub(lambda upper: "_" + upper.group().lower(), path.strip()) for path in mask.paths]
    for path in paths:
        descriptor = QueueMessage.DESCRIPTOR
        for part in path.split("."):
            if descriptor is None or part not in descriptor.fields_by_name:
                raise InvalidArgument(f"Invalid {field} path {path!r}: Queue has no field {path!r}")
            descriptor = descriptor.fields_by_name[part].message_type
            if descriptor is not None and descriptor.file.package == "google.protobuf":
                descriptor = None  # a Duration or Timestamp is set whole
    return paths


def read_mask(request: Any) -> list[str] | None:
    """The Queue fields a GetQueue or ListQueues asks for; None: all but ``stats``."""
    if not request.HasField("read_mask"):
        return None
    paths = mask_paths(request.read_mask, "read_mask")
    nested = sorted(path for path in paths if "." in path)
    if nested:
        raise InvalidArgument(f"read_mask names whole Queue fields here, not {', '.join(nested)}")
    return paths


def queue_message(name: str, info: QueueInfo, paths: list[str] | None = None) -> Any:
    """A pull Queue; ``retry_config.max_attempts`` is v1's maxLeases (unset: unlimited).

    ``paths`` keeps only those fields (a read mask); stats come only when it names them.
    """
    full = QueueMessage(name=name, state=ct.Queue.State.PAUSED if info.paused else ct.Queue.State.RUNNING)
    full.pull_target.SetInParent()
    if info.max_leases:
        full.retry_config.max_attempts = info.max_leases
    else:
        full.retry_config.unlimited_attempts = True
    if info.stats is not None:
        full.stats.tasks_count = info.stats.total_tasks
        if info.stats.oldest_eta_us is not None:
            full.stats.oldest_estimated_arrival_time.FromMicroseconds(info.stats.oldest_eta_us)
    if paths is None:
        full.ClearField("stats")
        return full
    chosen = QueueMessage()
    for path in paths:
        _copy(full, chosen, path)
    return chosen


_MESSAGE_FIELDS = frozenset(field.name for field in QueueMessage.DESCRIPTOR.fields if field.message_type is not None)


def _copy(source: Any, target: Any, field: str) -> None:
    if field not in _MESSAGE_FIELDS:
        setattr(target, field, getattr(source, field))
    elif source.HasField(field):  # copying an unset one would set it (and switch a oneof)
        getattr(target, field).CopyFrom(getattr(source, field))


# -- queue settings ------------------------------------------------------------------

#: Fields the server sets. A value given is ignored (the protos' rule for output-only
#: fields, so a Queue read can be written back); a mask that names one is refused.
_OUTPUT_ONLY = {
    "state": "PauseQueue and ResumeQueue change it",
    "purge_time": "PurgeQueue sets it",
    "stats": "it is counted from the tasks",
}
_PUSH_TARGETS = frozenset({"app_engine_http_target", "http_target"})
_ATTEMPTS = frozenset({"retry_config", "retry_config.max_attempts", "retry_config.unlimited_attempts"})
_NO_BACKOFF = "a pull queue has no retry backoff: a task is leased again when its lease ends"
#: Settings of a Cloud Tasks queue that this server's pull queues cannot keep, and why.
#: Each may be given only as its default (unset, or zero), which is what the queue has.
_NOT_KEPT = {
    "rate_limits": "pull queues here are not rate limited",
    "retry_config.max_retry_duration": "tasks here have no age limit (App Engine's task_age_limit)",
    "retry_config.min_backoff": _NO_BACKOFF,
    "retry_config.max_backoff": _NO_BACKOFF,
    "retry_config.max_doublings": _NO_BACKOFF,
    "task_ttl": "a task is kept until it is deleted, or leased retry_config.max_attempts times",
    "tombstone_ttl": "the bridge's --tombstone-seconds sets how long every queue keeps a deleted task's name",
}
_TOMBSTONE_TTL = "tombstone_ttl"
_WHOLE_QUEUE = tuple(field.name for field in QueueMessage.DESCRIPTOR.fields if field.name != "name")


@dataclass(frozen=True, slots=True)
class QueueChange:
    """What a CreateQueue or UpdateQueue sets on a pull queue: its attempts (v1's
    maxLeases, None for unlimited) when ``sets_attempts``, and nothing else."""

    sets_attempts: bool
    max_leases: int | None = None


def queue_change(queue: Any, paths: list[str] | None, tombstone_seconds: int) -> QueueChange:
    """What ``queue`` sets: the fields of ``paths`` (an update mask), or all of them.

    A setting this server cannot keep is refused (INVALID_ARGUMENT, naming it) unless it
    is given as what every queue here has: its default, or for ``tombstone_ttl`` the
    bridge's ``tombstone_seconds`` (which the project's Cloud Tasks backend sends). A push
    target is UNIMPLEMENTED, as every push feature here.
    """
    sets_attempts = False
    for path in paths if paths is not None else _WHOLE_QUEUE:
        top = path.split(".", 1)[0]
        if top == "name":
            continue
        if top in _OUTPUT_ONLY:
            if paths is None:
                continue
            raise InvalidArgument(f"update_mask names {path}, which is output only: {_OUTPUT_ONLY[top]}")
        if top in _PUSH_TARGETS:
            if queue.HasField(top):
                raise Unimplemented(f"{top}: push queues are not served here; give the queue a pull_target")
            continue
        sets_attempts = sets_attempts or path in _ATTEMPTS
        for setting, why in _NOT_KEPT.items():
            # The path names the setting, a field of it, or the message that holds it.
            inner = setting.startswith(path + ".")
            if not (inner or setting == path or path.startswith(setting + ".")):
                continue
            if not _given(queue, setting if inner else path):
                continue
            if setting != _TOMBSTONE_TTL:
                raise InvalidArgument(f"{setting} cannot be kept here ({why}); leave it unset")
            if queue.tombstone_ttl.ToNanoseconds() != tombstone_seconds * 1_000_000_000:
                raise InvalidArgument(
                    f"{setting} cannot be kept here ({why}); leave it unset, or give {tombstone_seconds}s"
                )
    if not sets_attempts:
        return QueueChange(False)
    retry = queue.retry_config
    if retry.WhichOneof("num_attempts") != "max_attempts":
        return QueueChange(True, None)
    if retry.max_attempts <= 0:
        raise InvalidArgument("retry_config.max_attempts must be > 0 (or set unlimited_attempts)")
    return QueueChange(True, int(retry.max_attempts))


def _given(message: Any, path: str) -> bool:
    """Whether the field at ``path`` holds anything but its default."""
    *parents, last = path.split(".")
    for part in parents:
        if not message.HasField(part):
            return False
        message = getattr(message, part)
    value = getattr(message, last)
    if message.DESCRIPTOR.fields_by_name[last].message_type is not None:
        return bool(value.ByteSize())
    return bool(value)


def page_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def page_start(names: list[str], token: str) -> int:
    """Where a page starts in sorted ``names``: after the name ``token`` carries."""
    if not token:
        return 0
    try:
        last = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("Invalid page_token") from None
    return bisect.bisect_right(names, last)


def pull_message(task: Any) -> tuple[bytes, str | None]:
    """The payload and tag of a Task to create; push tasks are not served."""
    kind = task.WhichOneof("payload_type")
    if kind == "app_engine_http_request":
        raise Unimplemented("App Engine HTTP (push) tasks are not served here; this server serves pull queues")
    if kind != "pull_message":
        raise InvalidArgument("task.pull_message is required: this server serves pull queues")
    payload = task.pull_message.payload
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidArgument(f"task.pull_message.payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return payload, check_tag(task.pull_message.tag, "task.pull_message.tag")


def us_of(stamp: Any) -> int:
    return int(stamp.seconds) * US + int(stamp.nanos) // 1000


def lease_seconds(request: Any) -> int:
    """A request's required lease_duration, cut to the second, at most a week."""
    if not request.HasField("lease_duration"):
        raise InvalidArgument("lease_duration is required")
    seconds = int(request.lease_duration.seconds)
    if seconds not in LEASE_SECONDS:
        raise InvalidArgument(f"lease_duration must be between 0 and {LEASE_SECONDS.high} seconds (one week)")
    return seconds


def lease_token(request: Any) -> int:
    """The schedule_time a renew, cancel or acknowledge carries as proof of its lease."""
    if not request.HasField("schedule_time"):
        raise InvalidArgument("schedule_time is required: the schedule_time of the task as leased")
    return us_of(request.schedule_time)


_TAG_FILTER = re.compile(r'tag=(?:"((?:[^"\\]|\\.)*)"|([^"]*))')


def lease_filter(text: str) -> tuple[bool, str | None]:
    """(group_by_tag, tag) of a LeaseTasks filter: '' (any task), ``tag="X"`` (that tag),
    ``tag_function=oldest_tag()`` (the tag of the oldest available task)."""
    text = text.strip()
    if not text:
        return False, None
    if text.replace(" ", "") == "tag_function=oldest_tag()":
        return True, None
    match = _TAG_FILTER.fullmatch(text)
    if match is None:
        raise InvalidArgument(f'Invalid filter {text!r}: expected tag="TAG" or tag_function=oldest_tag()')
    quoted, bare = match.groups()
    tag = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return True, check_tag(tag, "filter") or ""
