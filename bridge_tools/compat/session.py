"""One scenario on one endpoint: the client, the calls, what came back, and the cleanup.

Every call goes through Google's Python client, built from the Discovery document the
endpoint serves, and is recorded as an observation: the HTTP status and the body as it
came over the wire (numbers stay numbers), normalised against the scenario's
expectation at once, because later expectations refer to what earlier calls bound.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from backends.limits import TASK_ID, US
from bridge.client import authorized_http, discovery_url
from bridge_tools.compat.options import Options
from bridge_tools.compat.rules import At, Context, Generated, Rule, Same, Text, normalise, render
from bridge_tools.options import TOKEN_ENV

#: Cloud Tasks takes at most 10 LeaseTasks calls a second on a queue and answers the
#: rest with no tasks; the battery keeps under it, with room for the calls' latency.
LEASES_PER_WINDOW = 10
LEASE_WINDOW_SECONDS = 1.25
LEASE = "taskqueue.tasks.lease"
#: How many pages of a fresh queue the cleanup deletes at most (100 tasks a page).
CLEANUP_PAGES = 20


class Aborted(Exception):
    """The run was interrupted; the scenario stops at its next call."""


class SetupError(Exception):
    """The scenario's queue cannot be used on an endpoint: nothing it would see means anything.

    ``advice`` says what to change so that the battery can run.
    """

    def __init__(self, message: str, advice: str) -> None:
        super().__init__(message)
        self.advice = advice


class LeasePacer:
    """Keeps one endpoint's lease calls under Cloud Tasks' rate on each queue, for the run.

    Fresh queues never come near it; a pinned queue (``--queue``) carries every
    scenario's leases, and a throttled lease would read as a difference.
    """

    def __init__(self, calls: int = LEASES_PER_WINDOW, window: float = LEASE_WINDOW_SECONDS) -> None:
        self.calls = calls
        self.window = window
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def delay(self, queue: str, calls: int) -> float:
        """Seconds to wait before ``calls`` leases on ``queue``; 0 means they are booked."""
        with self._lock:
            sent = self._sent.setdefault(queue, deque())
            now = time.monotonic()
            while sent and sent[0] <= now - self.window:
                sent.popleft()
            if sent and len(sent) + calls > self.calls:
                return sent[0] + self.window - now
            sent.extend([now] * calls)
            return 0.0


@dataclass(frozen=True)
class Observation:
    label: str
    #: {"status": int, "body": JSON or None}, as received (or a summary of several).
    received: dict[str, Any]
    normalised: Any
    expected: Any


@dataclass
class Task:
    """What the scenario believes about one task; the expectations are built from it."""

    key: str
    id: Any
    payload: bytes
    tag: str | None
    enqueued: Rule
    eta: Rule
    retries: int = 0

    def settle(self) -> None:
        """After a response showed the task: later ones must repeat what it bound."""
        for name in ("id", "enqueued", "eta"):
            rule = getattr(self, name)
            if isinstance(rule, Generated):
                setattr(self, name, Same(rule.symbol))
            elif isinstance(rule, At) and rule.bind:
                setattr(self, name, Same(rule.bind))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _raw(response: Any, content: bytes) -> tuple[Any, bytes]:
    return response, content


def _decode(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return f"<not JSON: {content[:200]!r}>"


class Session:
    def __init__(self, url: str, side: str, options: Options, pacer: LeasePacer | None = None) -> None:
        self.url = url.rstrip("/")
        self.pacer = pacer or LeasePacer()
        self.side = side
        self.options = options
        #: Starts every task name, so that names never repeat between runs (tombstones).
        self.token = side + secrets.token_hex(4)
        self.pinned = options.queue is not None
        self.queue = options.queue or f"{options.queue_prefix}-{self.token}"
        self.project = options.project
        self.ctx = Context(self.queue, self.token, not self.pinned, int(options.clock_tolerance * US))
        self.observations: dict[str, Observation] = {}
        self.created: set[str] = set()
        #: The API methods (Discovery ids) the scenario called.
        self.methods: set[str] = set()
        self.failure: str | None = None
        #: What to change when the scenario's setup failed (`SetupError`).
        self.advice: str | None = None
        self.cleanup_problems: list[str] = []
        self.deleted = 0
        self._aborted = threading.Event()
        self._http = authorized_http(options.token, timeout=options.timeout)
        self._api: Any = None

    # -- the client ---------------------------------------------------------------------

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = build(
                "taskqueue",
                "v1beta2",
                discoveryServiceUrl=discovery_url(self.url),
                static_discovery=False,
                cache_discovery=False,
                http=self._http,
            )
        return self._api

    @property
    def tasks(self) -> Any:
        return self.api.tasks()

    @property
    def queues(self) -> Any:
        return self.api.taskqueues()

    def abort(self) -> None:
        self._aborted.set()

    def wait(self, seconds: float) -> None:
        """Real time passing, for a lease to expire; an abort cuts it short."""
        if self._aborted.wait(seconds):
            raise Aborted("the run was interrupted")

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def execute(request: Any, http: Any = None) -> tuple[int, Any]:
        """Send ``request`` (on ``http``, if given): its status and decoded body, whether
        it failed or not."""
        request.postproc = _raw
        try:
            response, content = request.execute(http=http)
        except HttpError as exc:
            return int(exc.resp.status), _decode(exc.content)
        return int(response.status), _decode(content)

    # -- observations -------------------------------------------------------------------

    def call(self, label: str, request: Any, expect: Any) -> Any:
        """Send ``request``, record what came back under ``label`` and return its body."""
        if self._aborted.is_set():
            raise Aborted("the run was interrupted")
        self.methods.add(request.methodId)
        self._pace([request])
        start = time.time_ns() // 1000
        status, body = self.execute(request)
        if request.methodId == "taskqueue.tasks.insert" and status < 300:
            self._track(request.body, body)
        self._observe(label, start, {"status": status, "body": body}, expect)
        return body

    def call_together(
        self, label: str, requests: list[Any], summarise: Callable[[list[tuple[int, Any]]], Any], expect: Any
    ) -> None:
        """Send ``requests`` at the same moment, each on a connection of its own, and
        record ``summarise`` of their answers (which of them gets what is up to chance)."""
        if self._aborted.is_set():
            raise Aborted("the run was interrupted")
        self.methods.update(request.methodId for request in requests)
        connections = [authorized_http(self.options.token, timeout=self.options.timeout) for _ in requests]
        self._pace(requests)
        start = time.time_ns() // 1000
        try:
            with ThreadPoolExecutor(len(requests)) as pool:
                answers = list(pool.map(self.execute, requests, connections))
        finally:
            for connection in connections:
                connection.close()
        self._observe(label, start, summarise(answers), expect)

    def _pace(self, requests: list[Any]) -> None:
        leases = sum(request.methodId == LEASE for request in requests)
        while leases and (delay := self.pacer.delay(self.queue, leases)) > 0:
            self.wait(delay)

    def _observe(self, label: str, start: int, received: Any, expect: Any) -> None:
        if label in self.observations:
            raise ValueError(f"two observations are labelled {label!r}")
        self.ctx.events[label] = (start, time.time_ns() // 1000)
        normalised = normalise(received, expect, self.ctx)
        self.observations[label] = Observation(label, received, normalised, render(expect, self.ctx))

    def _track(self, sent: str | None, body: Any) -> None:
        for resource in (_decode((sent or "").encode()), body):
            task_id = resource.get("id") if isinstance(resource, dict) else None
            if TASK_ID.matches(task_id):
                self.created.add(task_id)

    def bound(self, symbol: str, default: Any = "0") -> Any:
        """The value an earlier response bound to ``symbol`` (``default`` if none did)."""
        return self.ctx.bound.get(symbol, default)

    # -- expectations -------------------------------------------------------------------

    def name(self, short: str) -> str:
        return f"{self.token}-{short}"

    def queue_name(self, project: str | None = None) -> str:
        return f"projects/{project or self.project}/taskqueues/{self.queue}"

    @staticmethod
    def ok(body: Any, status: int = 200) -> dict[str, Any]:
        return {"status": status, "body": body}

    @staticmethod
    def error(status: int, reason: str, location: str | None = None) -> dict[str, Any]:
        """Google's error envelope; the messages are free text."""
        detail: dict[str, Any] = {"domain": "global", "reason": reason, "message": Text()}
        if location is not None:
            detail.update(locationType="parameter", location=location)
        return {"status": status, "body": {"error": {"errors": [detail], "code": status, "message": Text()}}}

    def task_json(self, task: Task, *, payload: bool = True, project: str | None = None) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "kind": "taskqueues#task",
            "id": task.id,
            "queueName": self.queue_name(project),
            "enqueueTimestamp": task.enqueued,
            "leaseTimestamp": task.eta,
            "retry_count": task.retries,
        }
        if payload:
            resource["payloadBase64"] = b64(task.payload)
        if task.tag is not None:
            resource["tag"] = task.tag
        return resource

    def tasks_json(self, kind: str, tasks: list[Task], **options: Any) -> dict[str, Any]:
        resource: dict[str, Any] = {"kind": kind}
        if tasks:
            resource["items"] = [self.task_json(task, **options) for task in tasks]
        return resource

    def id_of(self, task: Task) -> str:
        """The task's real name, for a URL (a generated one as bound)."""
        value = task.id if isinstance(task.id, str) else self.ctx.bound.get(task.id.symbol)
        return value if isinstance(value, str) and value else "never-generated"

    # -- the calls scenarios make most ----------------------------------------------------

    def insert(
        self,
        key: str | None,
        *,
        symbol: str | None = None,
        payload: bytes | None = None,
        wire_payload: str | None | EllipsisType = ...,
        tag: str | None = None,
        eta_us: int | None = None,
        project: str | None = None,
        label: str | None = None,
        **extra: Any,
    ) -> Task:
        """Insert a task named ``key`` (or unnamed, bound to ``symbol``) and check the answer.

        ``payload`` is what the task must hold; ``wire_payload`` what is sent instead of
        its plain encoding (None: no payloadBase64 at all). ``extra`` goes into the body.
        """
        short = key or symbol
        assert short is not None, "a task needs a name or a symbol"
        label = label or f"insert-{short}"
        payload = payload if payload is not None else f"payload of {short}".encode()
        body: dict[str, Any] = dict(extra)
        if wire_payload is not None:
            body["payloadBase64"] = b64(payload) if wire_payload is ... else wire_payload
        if key is not None:
            body["id"] = self.name(key)
        if tag is not None:
            body["tag"] = tag
        if eta_us is not None:
            body["leaseTimestamp"] = str(eta_us)
            self.ctx.bound[f"{short}.eta"] = str(eta_us)
        task = Task(
            key=short,
            id=self.name(key) if key is not None else Generated(symbol or short),
            payload=payload,
            tag=tag,
            enqueued=At(label, bind=f"{short}.enqueued"),
            eta=At(label, bind=f"{short}.eta") if eta_us is None else Same(f"{short}.eta"),
        )
        request = self.tasks.insert(project=project or self.project, taskqueue=self.queue, body=body)
        self.call(label, request, self.ok(self.task_json(task, project=project)))
        task.settle()
        return task

    def get(self, label: str, task: Task, *, project: str | None = None) -> None:
        request = self.tasks.get(project=project or self.project, taskqueue=self.queue, task=self.id_of(task))
        self.call(label, request, self.ok(self.task_json(task, project=project)))
        task.settle()

    def list_tasks(self, label: str, tasks: list[Task], *, project: str | None = None) -> None:
        request = self.tasks.list(project=project or self.project, taskqueue=self.queue)
        self.call(label, request, self.ok(self.tasks_json("taskqueues#tasks", tasks, payload=False, project=project)))
        for task in tasks:
            task.settle()

    def lease(
        self, label: str, tasks: list[Task], *, num: int = 10, secs: int = 60, project: str | None = None, **params: Any
    ) -> None:
        """Lease and expect exactly ``tasks``, in that order, each leased once more."""
        for task in tasks:
            task.eta = At(label, secs, bind=f"{task.key}.eta")
            task.retries += 1
        request = self.tasks.lease(
            project=project or self.project, taskqueue=self.queue, numTasks=num, leaseSecs=secs, **params
        )
        self.call(label, request, self.ok(self.tasks_json("taskqueue#tasks", tasks, project=project)))
        for task in tasks:
            task.settle()

    def renew(self, label: str, task: Task, secs: int, *, method: str = "update", body: Any = None) -> None:
        """Update or patch a lease the scenario holds, and expect it renewed (0: released)."""
        task.eta = At(label, secs, bind=f"{task.key}.eta")
        call = getattr(self.tasks, method)
        request = call(
            project=self.project, taskqueue=self.queue, task=self.id_of(task), newLeaseSeconds=secs, body=body
        )
        self.call(label, request, self.ok(self.task_json(task)))
        task.settle()

    def token_of(self, task: Task) -> dict[str, Any]:
        """A body carrying the task's current lease, the proof of ownership."""
        return {"leaseTimestamp": self.bound(f"{task.key}.eta")}

    def delete(self, label: str, task: Task) -> None:
        request = self.tasks.delete(project=self.project, taskqueue=self.queue, task=self.id_of(task))
        self.call(label, request, self.ok(None, 204))

    # -- before and after -----------------------------------------------------------------

    def check_queue(self) -> None:
        """The scenario's setup: its queue must exist on this endpoint, and a pinned one be
        empty, or no expectation about it can hold (both sides answering 404 is not "same")."""
        where = f"{self.queue} at {self.url}"
        status, body = self.execute(self.queues.get(project=self.project, taskqueue=self.queue))
        if status == 404:
            if self.pinned:
                advice = "name a queue both endpoints serve with --queue NAME, or declare it in their queue.yaml"
            else:
                advice = (
                    "this endpoint does not create queues on first use (it serves a queue.yaml, or Cloud Tasks "
                    "without create_queues): run with --queue NAME naming an empty pull queue that both endpoints "
                    "serve (declared in their queue.yaml)"
                )
            raise SetupError(f"queue {where} does not exist (HTTP 404)", advice)
        if status in (401, 403):
            advice = f"pass --token (or {TOKEN_ENV}) for an identity the queue's ACL lets produce and consume"
            raise SetupError(f"queue {where} refused the check's credentials (HTTP {status})", advice)
        if status != 200:
            raise SetupError(f"queue {where} cannot be read (HTTP {status})", "check that the endpoint serves it")
        if not self.pinned:
            return
        status, body = self.execute(self.tasks.list(project=self.project, taskqueue=self.queue))
        items = body.get("items") if status == 200 and isinstance(body, dict) else None
        if status != 200:
            raise SetupError(f"cannot list the pinned queue {where} (HTTP {status})", "check that it is a pull queue")
        if items:
            raise SetupError(
                f"the pinned queue {self.queue} holds {len(items)} task(s); the battery needs it empty",
                "empty the queue, or name another with --queue NAME",
            )

    def cleanup(self) -> None:
        """Delete every task this session created that still exists; on a queue the run
        made up, every task left in it too. Problems are recorded, never raised."""
        if self._api is None:  # no call was made, so nothing was created
            return
        try:
            for task_id in sorted(self.created):
                self._delete(task_id)
            for _ in range(CLEANUP_PAGES if not self.pinned else 0):
                status, body = self.execute(self.tasks.list(project=self.project, taskqueue=self.queue))
                items = body.get("items") if status == 200 and isinstance(body, dict) else None
                if not items:
                    break
                for item in items:
                    self._delete(str(item.get("id")))
        except Exception as exc:  # a cleanup reports its trouble; it never hides the run's own result
            self.cleanup_problems.append(f"{type(exc).__name__}: {exc}")

    def _delete(self, task_id: str) -> None:
        status, _ = self.execute(self.tasks.delete(project=self.project, taskqueue=self.queue, task=task_id))
        if status in (200, 204):
            self.deleted += 1
        elif status != 404:
            self.cleanup_problems.append(f"delete {task_id}: HTTP {status}")
