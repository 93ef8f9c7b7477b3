"""The Cloud Tasks backend: the staging proxy onto Google Cloud Tasks v2beta2 pull queues.

URL::

    cloudtasks://projects/PROJECT/locations/LOCATION[?projects=APP,APP&create_queues=true&attempts=3&timeout=10]

Options (query string):

- ``projects``: which v1 projects (the app id, partition prefix stripped: ``s~app`` is
  ``app``) a call may name. Default: PROJECT alone; a call naming another project is a
  404 that says which project is served, so the bridge never reaches another Cloud Tasks
  project, whatever its credentials allow. A comma-separated list names aliases of
  PROJECT (a staging project whose id is not the app id: ``projects=my-app``); they all
  share PROJECT's queues. ``*`` makes each v1 project name the Cloud Tasks project of
  the same id in LOCATION, as one App Engine app id is one Google Cloud project id
  (several apps on one bridge, each in its own project, as far as IAM lets it reach).
  A v1 project with '_' (``--dialect legacy-local``) can only be an alias: no Cloud
  Tasks project is named so.
- ``create_queues``: create a queue on first use, as the local emulator does (a pull
  queue with ``retry_config.max_attempts`` = the queue.yaml ``task_retry_limit`` and
  ``tombstone_ttl`` = the bridge's tombstone setting). Off by default: in a real
  project queues come from ``gcloud app deploy queue.yaml``, and mixing that with
  queue-management calls is what Google warns against. Off, an unknown queue is a 404.
- ``attempts``: how many times an idempotent call is made before a 503 (default 3).
- ``timeout``: seconds each call may take (default 10).

Connection: Application Default Credentials, or a service-account key file
(``credentials``, from ``BRIDGE_CLOUDTASKS_CREDENTIALS``); or ``endpoint`` host:port
(``BRIDGE_CLOUDTASKS_ENDPOINT``), a plain local gRPC server reached without credentials.

Mapping (docs/wire-contract.md §2): insert is CreateTask with the v1 id as the task id and the ETA
as ``schedule_time``; lease is LeaseTasks in FULL view with the filter ``tag="…"`` or
``tag_function=oldest_tag()``; update/patch are RenewLease, or CancelLease for 0
seconds, and a delete with a lease token is AcknowledgeTask, each fenced by the task's
``schedule_time`` (the v1 leaseTimestamp, exact to the microsecond, read first when the
body has none); list is one page of 100 (BASIC, FULL for payloads); stats
come from GetQueue with a read mask. Cloud Tasks owns the clock, the tombstones of
existing queues (their ``tombstone_ttl``) and ``maxLeases`` (``max_attempts``).

Limits: a queue name with '_' (``--dialect legacy-local``) is refused (400): Cloud
Tasks' queue ids hold letters, digits and '-' only, and mapping '_' to another
character would make two v1 queues one. ``enqueueTimestamp`` has second precision
(``create_time``); list returns some
100 tasks, sorted here, not the queue's first 100 (the service lists in no order);
``leasedLastMinute``/``leasedLastHour`` are not known and left out; LeaseTasks past 10
calls a second per queue returns no tasks (RESOURCE_EXHAUSTED), as App Engine did.

Errors are translated where they enter, by exception class (the table is in
`backends.cloudtasks.errors`). ServiceUnavailable and
DeadlineExceeded are retried for idempotent calls (get, list, queue info, delete, and
create, whose task id makes it idempotent: a retried create that meets AlreadyExists
with its own payload and tag succeeded the first time), then answered with 503. Lease,
renew and cancel are not retried: a lost reply may have taken effect, and a second try
would lease other tasks or fail the fence.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import google.auth.exceptions
import grpc
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2beta2 as ct
from google.cloud.tasks_v2beta2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from prometheus_client import Counter

from backends import url_options
from backends.base import (
    DEFAULT_TOMBSTONE_SECONDS,
    Backend,
    LeaseRequest,
    LeaseResult,
    NewTask,
    Queue,
    QueueInfo,
    QueueStats,
    Task,
    TaskPage,
    TaskState,
    first_within,
)
from backends.cloudtasks import admin
from backends.cloudtasks.errors import missing_queue, translated
from backends.errors import InvalidArgument, NotFound
from backends.limits import LIST_LIMIT, PROJECT, QUEUE_NAME, US

T = TypeVar("T")
log = logging.getLogger("bridge.cloudtasks")
#: Shown at /metrics: a run that sees empty leases can tell throttling from an empty queue.
THROTTLED_LEASES = Counter(
    "bridge_cloudtasks_leases_throttled",
    "LeaseTasks calls Cloud Tasks refused with RESOURCE_EXHAUSTED, answered as empty leases",
    ["project", "queue"],
)
DEFAULT_ATTEMPTS = 3
DEFAULT_TIMEOUT = 10.0
#: Seconds before the first retry; each later one waits twice as long.
DEFAULT_BACKOFF = 0.25
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded)
#: As Google's own transport: gRPC's default 4 MB would refuse a lease of a few 1 MiB
#: tasks after the service had leased them (a lease response may reach 32 MB).
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
_URL_PATH = r"projects/([A-Za-z0-9:.-]+)/locations/([A-Za-z0-9-]+)"


@dataclass(frozen=True, slots=True)
class Location:
    """Where the bridge's queues live in Cloud Tasks, and which v1 projects name it."""

    project: str
    location: str
    #: The v1 projects that name ``project``; None: each v1 project names its namesake.
    v1_projects: frozenset[str] | None

    @property
    def name(self) -> str:
        return self.of(self.project)

    def of(self, project: str) -> str:
        return f"projects/{project}/locations/{self.location}"

    def serving(self, v1_project: str) -> str:
        """The Cloud Tasks location a v1 project's queues live in; NotFound if none,
        InvalidArgument for a project Cloud Tasks cannot name."""
        if self.v1_projects is None:
            if not PROJECT.matches(v1_project):
                raise InvalidArgument(
                    f"Project {v1_project} cannot name a Cloud Tasks project ({PROJECT.described}); "
                    f"serve it as an alias instead (projects={v1_project} in the backend URL)",
                    location="project",
                )
            return self.of(v1_project)
        if v1_project in self.v1_projects:
            return self.name
        served = ", ".join(sorted(self.v1_projects))
        raise NotFound(
            f"Project {v1_project} is not served here: this bridge serves {served} on Cloud Tasks {self.name}",
            location="project",
        )

    @classmethod
    def from_url(cls, url: str) -> tuple[Location, dict[str, str]]:
        parts = urlsplit(url)
        match = re.fullmatch(_URL_PATH, parts.netloc + parts.path.rstrip("/"))
        if parts.scheme != "cloudtasks" or match is None:
            raise ValueError(
                f"invalid Cloud Tasks URL {url!r}: expected cloudtasks://projects/PROJECT/locations/LOCATION"
            )
        options = url_options(url, ("projects", "create_queues", "attempts", "timeout"))
        project, location = match.groups()
        names = options.get("projects", project)
        v1 = None if names == "*" else frozenset(p.strip() for p in names.split(",") if p.strip())
        return cls(project, location, v1), options


def us_of(stamp: timestamp_pb2.Timestamp) -> int:
    """A protobuf Timestamp in µs since the epoch (Cloud Tasks keeps µs at most)."""
    return int(stamp.seconds) * US + int(stamp.nanos) // 1000


def timestamp_of(us: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=us // US, nanos=(us % US) * 1000)


def _task(message: ct.Task) -> Task:
    """A backend Task from a Cloud Tasks one; its payload only from a FULL view."""
    raw = ct.Task.pb(message)
    return Task(
        id=raw.name.rsplit("/", 1)[1],
        payload=raw.pull_message.payload if raw.view == ct.Task.View.FULL else None,
        tag=raw.pull_message.tag or None,
        enqueue_us=us_of(raw.create_time),
        eta_us=us_of(raw.schedule_time),
        retry_count=raw.status.attempt_dispatch_count,
    )


def _flag(options: dict[str, str], name: str) -> bool:
    value = options.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"option {name} must be true or false, not {value!r}")
    return value in ("true", "1", "yes")


def _client(credentials: str | None, endpoint: str | None) -> ct.CloudTasksClient:
    if endpoint and credentials:
        raise ValueError("give a Cloud Tasks endpoint (a local server, no credentials) or credentials, not both")
    if endpoint:
        channel = grpc.insecure_channel(endpoint, options=_UNLIMITED)
        return ct.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    try:
        if credentials:
            client: ct.CloudTasksClient = ct.CloudTasksClient.from_service_account_file(credentials)
            return client
        return ct.CloudTasksClient()
    except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load Cloud Tasks credentials ({exc}); run `gcloud auth application-default login`, "
            "or set BRIDGE_CLOUDTASKS_CREDENTIALS to a service-account key file"
        ) from None


class CloudTasksBackend(Backend):
    def __init__(
        self,
        client: ct.CloudTasksClient,
        where: Location,
        *,
        create_queues: bool = False,
        tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if attempts < 1 or timeout <= 0:
            raise ValueError("attempts must be at least 1 and timeout positive")
        self.client = client
        self.where = where
        self.create_queues = create_queues
        self.tombstone_seconds = tombstone_seconds
        self.attempts = attempts
        self.timeout = timeout
        self.backoff = DEFAULT_BACKOFF

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS,
        credentials: str | None = None,
        endpoint: str | None = None,
    ) -> CloudTasksBackend:
        where, options = Location.from_url(url)
        try:
            attempts = int(options.get("attempts", DEFAULT_ATTEMPTS))
            timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise ValueError(f"attempts and timeout in {url!r} must be numbers") from None
        create = _flag(options, "create_queues")
        return cls(
            _client(credentials, endpoint),
            where,
            create_queues=create,
            tombstone_seconds=tombstone_seconds,
            attempts=attempts,
            timeout=timeout,
        )

    # -- names and calls ------------------------------------------------------------

    def queue_name(self, queue: Queue) -> str:
        if not QUEUE_NAME.matches(queue.name):
            raise InvalidArgument(
                f"Queue {queue.name} cannot be kept on Cloud Tasks, whose queue names are {QUEUE_NAME.described}; "
                "rename it, or serve it from a Redis backend",
                location="taskqueue",
            )
        return f"{self.where.serving(queue.project)}/queues/{queue.name}"

    def task_name(self, queue: Queue, task_id: str) -> str:
        return f"{self.queue_name(queue)}/tasks/{task_id}"

    def _invoke(
        self,
        method: Callable[..., T],
        request: Any,
        *,
        idempotent: bool = False,
        queue: Queue | None = None,
        lost_reply: Callable[[gexc.GoogleAPICallError], T] | None = None,
    ) -> T:
        """Make one call of the service; every call of the backend goes through here.

        ``idempotent``: made again after a transient error, up to ``attempts`` times with
        a growing pause. A retry that fails otherwise goes to ``lost_reply``, which
        returns the first attempt's result (it took effect, its reply was lost) or
        raises; without one, the failure stands.

        ``queue``: the call needs that queue. When the service says it does not exist
        (NOT_FOUND, or FAILED_PRECONDITION on CreateTask, confirmed by asking for the
        queue), it is created and the call made again with ``create_queues``; otherwise
        the caller gets the missing queue's 404.
        """
        try:
            return self._attempts(method, request, idempotent, lost_reply)
        except (gexc.NotFound, gexc.FailedPrecondition) as exc:
            if queue is None or not self._missing(queue, exc):
                raise
            if not self.create_queues:
                raise missing_queue(queue.name) from exc
        self.ensure_queue(self.queue_name(queue), queue.max_leases)
        return self._attempts(method, request, idempotent, lost_reply)

    def _attempts(
        self,
        method: Callable[..., T],
        request: Any,
        idempotent: bool,
        lost_reply: Callable[[gexc.GoogleAPICallError], T] | None,
    ) -> T:
        tries = self.attempts if idempotent else 1
        for number in range(tries):
            try:
                return method(request=request, retry=None, timeout=self.timeout)
            except _TRANSIENT:
                if number + 1 >= tries:
                    raise
                time.sleep(self.backoff * 2**number)
            except gexc.GoogleAPICallError as exc:
                if number == 0 or lost_reply is None:
                    raise
                return lost_reply(exc)
        raise AssertionError("unreachable")

    def _missing(self, queue: Queue, exc: gexc.GoogleAPICallError) -> bool:
        """Whether ``exc``, from a call on ``queue``, means that the queue does not exist."""
        if isinstance(exc, gexc.NotFound):
            return True
        try:
            self._attempts(self.client.get_queue, ct.GetQueueRequest(name=self.queue_name(queue)), False, None)
        except gexc.NotFound:
            return True
        return False

    def ensure_queue(self, name: str, max_leases: int | None) -> None:
        """Create a pull queue (``create_queues``); one that exists already is left alone."""
        definition = admin.pull_queue(name, max_leases, self.tombstone_seconds)
        parent = name.rsplit("/queues/", 1)[0]
        with contextlib.suppress(gexc.AlreadyExists):
            self._invoke(self.client.create_queue, ct.CreateQueueRequest(parent=parent, queue=definition))

    # -- the contract -----------------------------------------------------------------

    def insert(self, queue: Queue, task: NewTask) -> Task:
        name = self.task_name(queue, task.id)
        message = ct.Task(name=name, pull_message=ct.PullMessage(payload=task.payload, tag=task.tag or ""))
        if task.eta_us > 0:
            message.schedule_time = timestamp_of(task.eta_us)
        request = ct.CreateTaskRequest(parent=self.queue_name(queue), task=message, response_view=ct.Task.View.BASIC)
        mine = functools.partial(self._created_already, name, task)
        with translated("the task", task_id=task.id, queue=queue):
            try:
                created = self._invoke(self.client.create_task, request, idempotent=True, queue=queue, lost_reply=mine)
            except gexc.InvalidArgument as exc:
                if not task.eta_us:
                    raise
                # The front checked everything else a create can be refused for.
                raise InvalidArgument(
                    f"Cloud Tasks refused the task's leaseTimestamp, which may be at most 30 days after "
                    f"its clock: {exc.message}",
                    location="leaseTimestamp",
                ) from exc
        stored = _task(created)
        return Task(stored.id, task.payload, task.tag, stored.enqueue_us, stored.eta_us, stored.retry_count)

    def _created_already(self, name: str, task: NewTask, exc: gexc.GoogleAPICallError) -> ct.Task:
        """A retried create that failed: the task, if the first try created it (its reply
        lost, the name now taken by the task we sent); otherwise the failure."""
        if not isinstance(exc, gexc.AlreadyExists):
            raise exc
        request = ct.GetTaskRequest(name=name, response_view=ct.Task.View.FULL)
        try:
            found = self._invoke(self.client.get_task, request)
        except gexc.NotFound:
            raise exc from None
        pull = ct.Task.pb(found).pull_message
        if (pull.payload, pull.tag) != (task.payload, task.tag or ""):
            raise exc
        return found

    def get(self, queue: Queue, task_id: str) -> Task:
        request = ct.GetTaskRequest(name=self.task_name(queue, task_id), response_view=ct.Task.View.FULL)
        with translated("reading the task", task_id=task_id):
            return _task(self._invoke(self.client.get_task, request, idempotent=True))

    def list_tasks(
        self, queue: Queue, *, with_payloads: bool = False, max_bytes: int = 0, task_bytes: int = 0
    ) -> list[Task]:
        view = ct.Task.View.FULL if with_payloads else ct.Task.View.BASIC
        request = ct.ListTasksRequest(parent=self.queue_name(queue), response_view=view, page_size=LIST_LIMIT)
        with translated("listing the queue", queue=queue):
            # The pager holds the first page and fetches others only when iterated.
            page = self._invoke(self.client.list_tasks, request, idempotent=True, queue=queue)
        # One page, in no order the service promises; sorted here as v1 lists.
        tasks = sorted((_task(message) for message in page.tasks), key=lambda t: (t.eta_us, t.id))
        # The service sends the payloads with the page; the budget can only cut after.
        return first_within(tasks, max_bytes, task_bytes) if max_bytes else tasks

    def delete(self, queue: Queue, task_id: str, token_us: int | None = None) -> None:
        if token_us is not None:
            # Not retried, as renew and cancel: a lost reply may have taken effect.
            acknowledge = ct.AcknowledgeTaskRequest(
                name=self.task_name(queue, task_id), schedule_time=timestamp_of(token_us)
            )
            with translated("the acknowledgement", task_id=task_id, fence=True):
                self._invoke(self.client.acknowledge_task, acknowledge)
            return
        request = ct.DeleteTaskRequest(name=self.task_name(queue, task_id))
        with translated("deleting the task", task_id=task_id):
            self._invoke(self.client.delete_task, request, idempotent=True, lost_reply=admin.gone_already)

    def lease(self, queue: Queue, request: LeaseRequest) -> LeaseResult:
        if not request.group_by_tag:
            selection = ""
        elif request.tag is None:
            selection = "tag_function=oldest_tag()"
        else:
            selection = 'tag="' + request.tag.replace("\\", "\\\\").replace('"', '\\"') + '"'
        call = ct.LeaseTasksRequest(
            parent=self.queue_name(queue),
            max_tasks=request.num_tasks,
            lease_duration=duration_pb2.Duration(seconds=request.lease_us // US),
            response_view=ct.Task.View.FULL,
            filter=selection,
        )
        with translated("the lease", queue=queue):
            try:
                response = self._invoke(self.client.lease_tasks, call, queue=queue)
            except gexc.ResourceExhausted as exc:
                # Past 10 LeaseTasks a second App Engine answered with no tasks; so does this.
                # Logged, since a project quota running out looks the same from here.
                log.info("LeaseTasks on %s throttled, no tasks returned: %s", call.parent, exc.message)
                THROTTLED_LEASES.labels(queue.project, queue.name).inc()
                return LeaseResult()
            except gexc.FailedPrecondition as exc:
                # A paused (or disabled) pull queue refuses leases; v1 leases nothing from it.
                log.info("LeaseTasks on %s refused, no tasks returned: %s", call.parent, exc.message)
                return LeaseResult()
        # Cloud Tasks drops a task after max_attempts without saying so: none reported.
        return LeaseResult(_task(message) for message in response.tasks)

    def modify_lease(self, queue: Queue, task_id: str, lease_us: int, token_us: int | None) -> Task:
        name = self.task_name(queue, task_id)
        if token_us is None:
            basic = ct.GetTaskRequest(name=name, response_view=ct.Task.View.BASIC)
            with translated("reading the task", task_id=task_id):
                token_us = _task(self._invoke(self.client.get_task, basic, idempotent=True)).eta_us
        fence = timestamp_of(token_us)
        with translated("the lease change", task_id=task_id, fence=True):
            if lease_us == 0:
                cancel = ct.CancelLeaseRequest(name=name, schedule_time=fence, response_view=ct.Task.View.FULL)
                return _task(self._invoke(self.client.cancel_lease, cancel))
            renew = ct.RenewLeaseRequest(
                name=name,
                schedule_time=fence,
                lease_duration=duration_pb2.Duration(seconds=lease_us // US),
                response_view=ct.Task.View.FULL,
            )
            return _task(self._invoke(self.client.renew_lease, renew))

    def queue_info(self, queue: Queue, *, with_stats: bool) -> QueueInfo:
        request = ct.GetQueueRequest(name=self.queue_name(queue))
        if with_stats:
            request.read_mask = field_mask_pb2.FieldMask(paths=["name", "retry_config", "state", "stats"])
        with translated("reading the queue", queue=queue):
            found = self._invoke(self.client.get_queue, request, idempotent=True, queue=queue)
        max_leases = admin.max_leases_of(found)
        paused = found.state == ct.Queue.State.PAUSED
        if not with_stats:
            return QueueInfo(max_leases, paused=paused)
        raw = ct.Queue.pb(found)
        oldest = (
            us_of(raw.stats.oldest_estimated_arrival_time)
            if raw.stats.HasField("oldest_estimated_arrival_time")
            else None
        )
        # leasedLastMinute / leasedLastHour and the counts by state: Cloud Tasks keeps no
        # such counts (None: omitted, "n/a"); nor dead letters.
        return QueueInfo(max_leases, QueueStats(int(raw.stats.tasks_count), oldest, None, None), paused)

    # -- admin verbs (backends.cloudtasks.admin) -----------------------------------------

    unsupported_reasons = admin.UNSUPPORTED

    def list_queues(self, project: str | None = None) -> list[Queue]:
        return admin.list_queues(self, project)

    def create_queue(self, queue: Queue) -> None:
        admin.create_queue(self, queue)

    def update_queue(self, queue: Queue) -> None:
        admin.update_queue(self, queue)

    def delete_queue(self, queue: Queue) -> None:
        admin.delete_queue(self, queue)

    def purge_queue(self, queue: Queue) -> int:
        return admin.purge_queue(self, queue)

    def pause_queue(self, queue: Queue) -> None:
        admin.set_paused(self, queue, True)

    def resume_queue(self, queue: Queue) -> None:
        admin.set_paused(self, queue, False)

    def list_tasks_page(
        self,
        queue: Queue,
        *,
        page_size: int,
        page_token: str | None = None,
        tag: str | None = None,
        state: TaskState | None = None,
        with_payload: bool = False,
        max_bytes: int = 0,
        task_bytes: int = 0,
    ) -> TaskPage:
        return admin.list_tasks_page(
            self,
            queue,
            page_size=page_size,
            page_token=page_token,
            tag=tag,
            state=state,
            with_payload=with_payload,
            max_bytes=max_bytes,
            task_bytes=task_bytes,
            task_of=_task,
        )

    def ping(self) -> None:
        request = ct.ListQueuesRequest(parent=self.where.name, page_size=1)
        with translated("listing queues"):
            self._invoke(self.client.list_queues, request, idempotent=True)

    def close(self) -> None:
        self.client.transport.close()  # type: ignore[no-untyped-call]
