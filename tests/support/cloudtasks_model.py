"""The fake Cloud Tasks service's records, clock and the limits it enforces, with their sources.

Limits are the v2beta2 reference's; where it is silent the value is marked **assumed**.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.api_core import exceptions
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, timestamp_pb2

US = 1_000_000
MAX_LEASE_US = 7 * 24 * 3600 * US
MAX_SCHEDULE_AHEAD_US = 30 * 24 * 3600 * US
DEFAULT_TOMBSTONE_US = 3600 * US
#: DeleteQueue: "a queue with the same name can't be created for 7 days".
DELETED_QUEUE_US = 7 * 24 * 3600 * US
#: ListQueues: "The maximum page size is 9800."
MAX_QUEUES_PAGE = 9800
#: ListTasks pages hold at most 1000 tasks (ListTasksRequest.page_size).
MAX_TASKS_PAGE = 1000
MAX_PAYLOAD_BYTES = 1024 * 1024  # assumed: "1MB" for pull tasks read as 2**20, the App Engine limit
MAX_TAG_BYTES = 500  # assumed: "less than 500 characters" read as the App Engine SDK's 500 bytes
MAX_LEASE_RESPONSE_BYTES = 32 * 1024 * 1024
LEASE_CALLS_PER_SECOND = 10

NOT_FOUND = "Requested entity was not found."
TOMBSTONED = (
    "The task no longer exists, though a task with this name existed recently. "
    "The task either successfully completed or was deleted."
)
ALREADY_EXISTS = "Requested entity already exists"
NOT_LEASED = "The task is not leased, or the schedule_time given is not the task's current schedule_time."
# assumed: the protos give no code for re-creating a deleted queue's name within 7 days.
QUEUE_RECENTLY_DELETED = "The queue cannot be created because a queue with this name existed too recently."
PAUSED = "The queue is paused or disabled."

LOCATION_PATTERN = r"projects/[A-Za-z0-9:.-]{1,100}/locations/[A-Za-z0-9-]{1,100}"
LOCATION_NAME = re.compile(rf"^{LOCATION_PATTERN}$")
QUEUE_NAME = re.compile(rf"^{LOCATION_PATTERN}/queues/[A-Za-z0-9-]{{1,100}}$")
TASK_NAME = re.compile(rf"^({LOCATION_PATTERN}/queues/[A-Za-z0-9-]{{1,100}})/tasks/([A-Za-z0-9_-]{{1,500}})$")
TAG_FILTER = re.compile(r'^tag=(?:"((?:[^"\\]|\\.)*)"|([^"]*))$')
QUEUE_FIELDS = {f.name for f in ct.Queue.pb().DESCRIPTOR.fields}


class Refused(Exception):
    """Ends a call with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> Refused:
    return Refused(grpc.StatusCode.INVALID_ARGUMENT, message)


class FakeClock:
    """The service's clock: the machine's, plus an offset; optionally frozen."""

    def __init__(self) -> None:
        self.offset_us = 0
        self._frozen_at: int | None = None

    def now_us(self) -> int:
        base = self._frozen_at if self._frozen_at is not None else time.time_ns() // 1000
        return base + self.offset_us

    def freeze(self) -> None:
        self._frozen_at = time.time_ns() // 1000

    def advance(self, seconds: float) -> None:
        self.offset_us += int(seconds * US)


@dataclass
class StoredTask:
    name: str
    payload: bytes
    tag: str
    create_us: int
    schedule_us: int
    dispatches: int = 0


@dataclass
class StoredQueue:
    name: str
    pull: bool
    max_attempts: int | None
    tombstone_us: int
    state: int = ct.Queue.State.RUNNING
    #: When PurgeQueue last ran (µs), or None.
    purge_us: int | None = None
    tasks: dict[str, StoredTask] = field(default_factory=dict)
    #: task name -> when its tombstone ends (µs)
    tombstones: dict[str, int] = field(default_factory=dict)
    lease_calls: list[int] = field(default_factory=list)

    def reserved(self, name: str, now: int) -> bool:
        return self.tombstones.get(name, 0) > now


@dataclass
class Fault:
    error: type[exceptions.GoogleAPICallError]
    methods: frozenset[str] | None
    remaining: int
    after: bool


def us_of(stamp: timestamp_pb2.Timestamp) -> int:
    return int(stamp.seconds) * US + int(stamp.nanos) // 1000


def stamp(us: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=us // US, nanos=(us % US) * 1000)


def seconds_of(duration: duration_pb2.Duration) -> int:
    """A duration cut to whole seconds, as the service does."""
    return int(duration.seconds)


def apply_queue_fields(queue: StoredQueue, raw: Any, paths: list[str] | None) -> None:
    """Set a queue's fields from a Queue message (CreateQueue, UpdateQueue): those in
    ``paths`` (an update_mask), or all of them; output-only fields are ignored."""
    chosen = {path.split(".", 1)[0] for path in paths} if paths else set(QUEUE_FIELDS)
    unknown = chosen - QUEUE_FIELDS
    if unknown:
        raise invalid(f"Invalid update_mask paths: {', '.join(sorted(unknown))}")
    if "retry_config" in chosen:
        which = raw.retry_config.WhichOneof("num_attempts")
        if which == "max_attempts" and raw.retry_config.max_attempts <= 0:
            raise invalid("retry_config.max_attempts must be > 0")
        queue.max_attempts = raw.retry_config.max_attempts if which == "max_attempts" else None
    if "tombstone_ttl" in chosen:
        has = raw.HasField("tombstone_ttl")
        queue.tombstone_us = seconds_of(raw.tombstone_ttl) * US if has else DEFAULT_TOMBSTONE_US
    if {"pull_target", "app_engine_http_target", "http_target"} & chosen:
        queue.pull = raw.WhichOneof("target_type") == "pull_target"


def page_start(token: str) -> int:
    """Where the page a token names starts; the fake's page tokens are offsets."""
    if not token:
        return 0
    if not token.isdigit():
        raise invalid(f"Invalid page_token: {token!r}")
    return int(token)
