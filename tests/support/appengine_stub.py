"""App Engine's own pull-queue implementation, run in this process as the reference.

The App Engine SDK ships with gcloud (Debian's ``google-cloud-cli-app-engine-python``);
its ``platform/google_appengine`` holds ``google/appengine/api/taskqueue/taskqueue_stub.py``,
the dev_appserver's task queue service, with ``taskqueue.py`` (the client library,
whose checks ran in the app before a request left it) and ``queueinfo.py`` (queue.yaml).
`tests/test_reference_stub.py` runs the same operations on it and on the bridge.

`Reference` drives one stub as App Engine's client library did, the client's checks
first (task name, tag and payload size, numTasks, leaseSecs), then the RPC, and answers
as the v1 REST front promises to (docs/wire-contract.md §1.5)::

    a client check, INVALID_ETA, INVALID_REQUEST, TASK_TOO_LARGE   400 invalid
    TASK_ALREADY_EXISTS, TOMBSTONED_TASK on insert                 409 duplicate
    UNKNOWN_TASK, TOMBSTONED_TASK elsewhere                        404 notFound
    TASK_LEASE_EXPIRED                                             409 conflict

Where the bridge differs from the stub by decision, `Reference` answers as the bridge
does instead; each such place is marked with its key in `NORMALISED`, which is the
list of KNOWN_DIFFERENCES.md's table "Differences from App Engine's own stub" (a test
keeps the two equal), and `Reference.normalised` counts how often each one changed
an answer.

Loading: the SDK's folder and two of its ``lib/`` folders (six, frozendict) go at the
end of ``sys.path``, after the virtualenv's packages, so that the SDK's generated
protobuf modules run on the installed protobuf (they were generated for 6.x), not on
the SDK's own copy. The one shim: the client library reads ``HTTP_HOST`` from the
request's context, which a test has not got; it is set around the client's checks,
as an app's request would have it.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where the SDK sits inside the Cloud SDK.
SDK_FOLDER = Path("platform", "google_appengine")
STUB_FILE = Path("google", "appengine", "api", "taskqueue", "taskqueue_stub.py")
#: The SDK's own libraries the stub and the client library import.
SDK_LIBRARIES = ("six", "frozendict")
#: Names the environment variable that points at an SDK elsewhere (a google_appengine folder).
SDK_VARIABLE = "APPENGINE_SDK"

#: The differences the bridge keeps by decision, by their key in KNOWN_DIFFERENCES.md.
NORMALISED = frozenset(
    {
        "zero-eta",
        "generated-names",
        "enqueue-seconds",
        "dropped-not-counted",
        "untagged-group",
        "missing-lease-token",
        "tag-bytes",
        "payload-band",
        "stats-lease-counts",
        "oldest-task-seconds",
        "eta-equal-now",
        "pause",
        "retry-limit-zero",
        "task-age-limit",
    }
)


def find_sdk() -> Path | None:
    """The SDK's google_appengine folder: $APPENGINE_SDK, or the one of the gcloud on PATH."""
    given = os.environ.get(SDK_VARIABLE)
    if given:
        return Path(given) if (Path(given) / STUB_FILE).is_file() else None
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    # gcloud is <sdk>/bin/gcloud, usually behind a symbolic link; gcloud itself knows
    # for sure, but takes seconds to say.
    found = Path(os.path.realpath(gcloud)).parents[1] / SDK_FOLDER
    if (found / STUB_FILE).is_file():
        return found
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        answer = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found = Path(answer.stdout.strip()) / SDK_FOLDER
        if (found / STUB_FILE).is_file():
            return found
    return None


@dataclass(frozen=True)
class Sdk:
    """The modules of the SDK that the reference uses."""

    stub: Any
    pb: Any
    client: Any
    errors: Any
    #: The context variable the client library reads HTTP_HOST from.
    host: Any

    @classmethod
    def load(cls, root: Path) -> Sdk:
        for folder in [*(root / "lib" / name for name in SDK_LIBRARIES), root]:
            if str(folder) not in sys.path:
                sys.path.append(str(folder))
        with warnings.catch_warnings():
            # Python 2 era modules: deprecation warnings at import are the SDK's business.
            warnings.simplefilter("ignore")
            stub = importlib.import_module("google.appengine.api.taskqueue.taskqueue_stub")
            pb = importlib.import_module("google.appengine.api.taskqueue.taskqueue_service_bytes_pb2")
            client = importlib.import_module("google.appengine.api.taskqueue.taskqueue")
            errors = importlib.import_module("google.appengine.runtime.apiproxy_errors")
            context: Any = importlib.import_module("google.appengine.runtime.context")
            wsgi = importlib.import_module("google.appengine.runtime.context.wsgi")
        # Read the request's context from context variables rather than os.environ, so
        # that setting HTTP_HOST touches nothing outside the SDK.
        context.READ_FROM_OS_ENVIRON = False
        return cls(stub, pb, client, errors, wsgi.HTTP_HOST)


@dataclass(frozen=True)
class Seen:
    """A task as an answer shows it. ``payload`` and ``enqueue_s`` are None where the
    call does not give them (a list has no payloads, a lease no enqueue time)."""

    id: str
    eta_us: int
    retry_count: int
    tag: str | None
    payload: bytes | None
    enqueue_s: int | None = None

    def __repr__(self) -> str:
        """Short enough for a trace of forty calls: the payload by its size and CRC."""
        payload = "-" if self.payload is None else f"{len(self.payload)} B crc {zlib.crc32(self.payload):08x}"
        fields = f"eta={self.eta_us} retries={self.retry_count} tag={self.tag!r}"
        return f"{self.id} {fields} payload={payload} enqueue_s={self.enqueue_s}"


@dataclass(frozen=True)
class Refused:
    """An error answer: its status, Google reason, and whether it says that the name
    belonged to a task that was deleted (or dropped after its leases)."""

    status: int
    reason: str
    tombstoned: bool = False


@dataclass(frozen=True)
class Stats:
    total_tasks: int
    oldest_task_s: int
    max_leases: int | None


Answer = Seen | Refused | list[Seen] | Stats | None


class Reference:
    """One stub (one application's queues, from ``queue_yaml``) on a clock set by the caller.

    ``now_us`` is the clock; every call reads it. The stub keeps times as float seconds
    (``_SecToUsec(t) = int(t * 1e6)``), so the clock it is given sits half a
    microsecond past ``now_us``, which converts back to ``now_us`` exactly.
    """

    def __init__(self, sdk: Sdk, queue_yaml: Path, now_us: int) -> None:
        self.sdk = sdk
        self.now_us = now_us
        self.service = sdk.stub.TaskQueueServiceStub(queue_config_path=str(queue_yaml), gettime=self._seconds)
        #: How many answers each normalisation (a key of NORMALISED) changed.
        self.normalised: Counter[str] = Counter()

    def _seconds(self) -> float:
        return (self.now_us + 0.5) / 1e6

    # -- the API's methods ----------------------------------------------------------

    def insert(self, queue: str, name: str | None, payload: bytes, tag: str | None, eta_us: int | None) -> Answer:
        """An insert; ``eta_us`` None or 0 means now. ``name`` None lets the stub choose."""
        pb = self.sdk.pb
        refused = self._client_check(lambda: self._client_task(name, payload, tag))
        if refused is not None:
            return refused
        request = pb.TaskQueueAddRequest(queue_name=queue.encode(), mode=pb.TaskQueueMode.PULL, body=payload)
        if name is not None:
            request.task_name = name.encode()
        if eta_us == 0:
            # zero-eta: the bridge reads leaseTimestamp 0 as "now"; the stub would keep
            # the epoch (taskqueue_stub.py:1911) and sort it before every other task.
            self.normalised["zero-eta"] += 1
        request.eta_usec = self.now_us if not eta_us else eta_us
        if tag:  # the client sends no empty tag (taskqueue.py:2394)
            request.tag = tag.encode()
        response = pb.TaskQueueAddResponse()
        failed = self._call(self.service._Dynamic_Add, request, response, None, inserting=True)
        if failed is not None:
            return failed
        chosen = response.chosen_task_name.decode() if response.HasField("chosen_task_name") else name
        assert chosen is not None
        return self.get(queue, chosen)

    def lease(self, queue: str, num: int, secs: int, group_by_tag: bool, tag: str | None) -> Answer:
        client = self.sdk.client
        refused = self._client_check(
            lambda: (client.Queue._ValidateLeaseSeconds(secs), client.Queue._ValidateMaxTasks(num))
        )
        if refused is not None:
            return refused
        pb = self.sdk.pb
        request = pb.TaskQueueQueryAndOwnTasksRequest(
            queue_name=queue.encode(),
            lease_seconds=secs,
            max_tasks=self._max_tasks(queue, num, group_by_tag, tag),
            group_by_tag=group_by_tag,
        )
        if tag is not None:
            request.tag = tag.encode()
        response = pb.TaskQueueQueryAndOwnTasksResponse()
        failed = self._call(self.service._Dynamic_QueryAndOwnTasks, request, response, None)
        if failed is not None:
            return failed
        return [
            Seen(t.task_name.decode(), t.eta_usec, t.retry_count, t.tag.decode() if t.HasField("tag") else None, t.body)
            for t in response.task
        ]

    def modify_lease(self, queue: str, name: str, secs: int, token_us: int | None) -> Answer:
        pb = self.sdk.pb
        if token_us is None:
            # missing-lease-token: the bridge takes an update without leaseTimestamp as
            # made with the task's current ETA; the stub needs the token
            # (taskqueue_stub.py:1547 compares it with the task's ETA).
            current = self.get(queue, name)
            token_us = current.eta_us if isinstance(current, Seen) else 0
            self.normalised["missing-lease-token"] += 1
        request = pb.TaskQueueModifyTaskLeaseRequest(
            queue_name=queue.encode(), task_name=name.encode(), eta_usec=token_us, lease_seconds=secs
        )
        response = pb.TaskQueueModifyTaskLeaseResponse()
        failed = self._call(self.service._Dynamic_ModifyTaskLease, request, response, None)
        return failed if failed is not None else self.get(queue, name)

    def delete(self, queue: str, name: str) -> Answer:
        pb = self.sdk.pb
        request = pb.TaskQueueDeleteRequest(queue_name=queue.encode(), task_name=[name.encode()])
        response = pb.TaskQueueDeleteResponse()
        self.service._Dynamic_Delete(request, response, None)
        [code] = response.result
        return None if code == pb.TaskQueueServiceError.OK else self._refusal(code, False)

    def get(self, queue: str, name: str) -> Answer:
        pb = self.sdk.pb
        request = pb.TaskQueueFetchTaskRequest(queue_name=queue.encode(), task_name=name.encode())
        response = pb.TaskQueueFetchTaskResponse()
        failed = self._call(self.service._Dynamic_FetchTask, request, response, None)
        if failed is not None:
            return failed
        [task] = response.task.task
        return self._seen(task, with_payload=True)

    def list_tasks(self, queue: str) -> list[Seen]:
        pb = self.sdk.pb
        # By ETA (start_eta_usec given; without it the stub lists by name), 100 at most.
        request = pb.TaskQueueQueryTasksRequest(queue_name=queue.encode(), start_eta_usec=0, max_rows=100)
        response = pb.TaskQueueQueryTasksResponse()
        self.service._Dynamic_QueryTasks(request, response, None)
        return [self._seen(task, with_payload=False) for task in response.task]

    def stats(self, queue: str) -> Stats:
        pb = self.sdk.pb
        request = pb.TaskQueueFetchQueueStatsRequest(queue_name=[queue.encode()])
        response = pb.TaskQueueFetchQueueStatsResponse()
        self.service._Dynamic_FetchQueueStats(request, response, None)
        [stats] = response.queuestats
        # stats-lease-counts: the stub's executed_last_minute/hour are random numbers
        # (taskqueue_stub.py:963), so leasedLastMinute and leasedLastHour are not compared.
        # oldest-task-seconds: the bridge gives stats.oldestTask in seconds, "0" for an
        # empty queue; the stub oldest_eta_usec in µs, -1 for an empty queue (line 958).
        oldest = stats.oldest_eta_usec // 1_000_000 if stats.num_tasks else 0
        fetched = pb.TaskQueueFetchQueuesResponse()
        self.service._Dynamic_FetchQueues(pb.TaskQueueFetchQueuesRequest(max_rows=100), fetched, None)
        [found] = [q for q in fetched.queue if q.queue_name.decode() == queue]
        retry = found.retry_parameters
        limit = retry.retry_limit if found.HasField("retry_parameters") and retry.HasField("retry_limit") else None
        return Stats(stats.num_tasks, oldest, limit)

    def purge(self, queue: str) -> None:
        pb = self.sdk.pb
        request = pb.TaskQueuePurgeQueueRequest(queue_name=queue.encode())
        self.service._Dynamic_PurgeQueue(request, pb.TaskQueuePurgeQueueResponse(), None)

    # -- helpers --------------------------------------------------------------------

    def _client_task(self, name: str | None, payload: bytes, tag: str | None) -> None:
        # tag-bytes: the client measures a tag with len() (taskqueue.py:912): bytes under
        # Python 2, characters under Python 3. The limit is in bytes ("Tag must be <=
        # 500 bytes"), as the bridge counts it, so the tag goes in as UTF-8 bytes, as a
        # Python 2 app's str did.
        encoded = tag.encode() if tag else None
        if encoded is not None and len(encoded) != len(tag or ""):
            self.normalised["tag-bytes"] += 1
        self.sdk.client.Task(payload=payload, method="PULL", name=name, tag=encoded)

    def _client_check(self, check: Any) -> Refused | None:
        token = self.sdk.host.set("localhost")
        try:
            check()
        except self.sdk.client.Error:
            return Refused(400, "invalid")
        finally:
            self.sdk.host.reset(token)
        return None

    def _call(
        self, method: Any, request: Any, response: Any, request_id: None, *, inserting: bool = False
    ) -> Refused | None:
        try:
            method(request, response, request_id)
        except self.sdk.errors.ApplicationError as exc:
            return self._refusal(exc.application_error, inserting)
        return None

    def _refusal(self, code: int, inserting: bool) -> Refused:
        codes = self.sdk.pb.TaskQueueServiceError
        if code in (codes.TASK_ALREADY_EXISTS, codes.TOMBSTONED_TASK) and inserting:
            return Refused(409, "duplicate", code == codes.TOMBSTONED_TASK)
        if code in (codes.UNKNOWN_TASK, codes.TOMBSTONED_TASK):
            return Refused(404, "notFound", code == codes.TOMBSTONED_TASK)
        if code == codes.TASK_LEASE_EXPIRED:
            return Refused(409, "conflict")
        if code in (codes.INVALID_ETA, codes.INVALID_REQUEST, codes.TASK_TOO_LARGE, codes.INVALID_TAG):
            return Refused(400, "invalid")
        raise AssertionError(f"the stub answered {codes.ErrorCode.Name(code)}, which the test does not map")

    @staticmethod
    def _seen(task: Any, *, with_payload: bool) -> Seen:
        return Seen(
            task.task_name.decode(),
            task.eta_usec,
            task.retry_count,
            task.tag.decode() if task.HasField("tag") else None,
            task.body if with_payload else None,
            # enqueue-seconds: the stub keeps the creation time in whole seconds
            # (taskqueue_stub.py:1908), the bridge in µs; seconds are compared.
            task.creation_time_usec // 1_000_000,
        )

    def _max_tasks(self, queue_name: str, num: int, group_by_tag: bool, tag: str | None) -> int:
        """The max_tasks that makes the stub lease ``num`` tasks where it can, as the bridge does.

        dropped-not-counted: the stub counts a task it drops after task_retry_limit
        leases against max_tasks (taskqueue_stub.py:1487); the bridge leases ``num``
        others. untagged-group: grouping by the oldest task's tag when that task is
        untagged, the stub keeps the untagged tasks among the first max_tasks only
        (line 1439); the bridge leases ``num`` untagged ones.
        """
        queue = self.service._GetGroup().GetQueue(queue_name)
        stub = self.sdk.stub
        text = tag or ""  # as the RPC reads an unset tag

        def leasable(task: Any) -> bool:
            return bool(stub.Retry(task, queue).CanRetry(task.retry_count + 1, 0))

        with queue._lock:

            def first(size: int) -> list[Any]:
                return list(queue._QueryAndOwnTasksGetTaskList(size, group_by_tag, self.now_us, text))

            # The tasks available now, by ETA: no larger max_tasks finds more.
            available = bisect.bisect_left(queue._sorted_by_eta, (self.now_us, ""))
            # The bridge goes on past dropped or filtered tasks until it has ``num`` or
            # has seen every available one.
            chosen = num
            while chosen < available and sum(map(leasable, first(chosen))) < num:
                chosen += 1
            asked = first(num)
            if [task.task_name for task in first(chosen)] == [task.task_name for task in asked]:
                return num
            if not all(map(leasable, asked)):
                self.normalised["dropped-not-counted"] += 1
            if group_by_tag and not text and len(asked) < min(num, available):
                self.normalised["untagged-group"] += 1
        return chosen
