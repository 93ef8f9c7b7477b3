"""The backend contract: the Task Queue API's own verbs over small frozen values.

Times are integers in microseconds since the epoch. A backend never sees JSON or HTTP:
the front validates every argument against the wire contract before it calls here, so
a backend only reports what depends on stored state (unknown task, duplicate name, lost
lease) and outages, with the errors of `backends.errors`. The rules and limits of names and values are in
`backends.limits`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

#: How long a deleted task's name stays reserved, unless configured otherwise.
DEFAULT_TOMBSTONE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue as a backend addresses it.

    ``project`` is the application id without its partition prefix, so ``s~app`` and
    ``app`` name the same queue. ``max_leases`` comes from queue.yaml (None: unlimited).
    """

    project: str
    name: str
    max_leases: int | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """What an insert asks for. ``eta_us`` 0 means "available now"."""

    id: str
    payload: bytes
    tag: str | None = None
    eta_us: int = 0


@dataclass(frozen=True, slots=True)
class Task:
    """A stored task. ``eta_us`` is when it can next be leased (the v1 leaseTimestamp);
    ``payload`` is None where the call does not return payloads (list)."""

    id: str
    payload: bytes | None
    tag: str | None
    enqueue_us: int
    eta_us: int
    retry_count: int


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """A lease call. ``group_by_tag`` without ``tag`` leases the tag of the oldest
    available task (untagged tasks form a group of their own)."""

    num_tasks: int
    lease_us: int
    group_by_tag: bool = False
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts taken at one moment. A leased-last count is None when the backend cannot
    know it (the front then omits it rather than invent it)."""

    total_tasks: int
    oldest_eta_us: int | None
    leased_last_minute: int | None
    leased_last_hour: int | None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    max_leases: int | None
    stats: QueueStats | None = None


class Backend(abc.ABC):
    """Where tasks live. One instance serves every thread of a process.

    Building one is not part of the contract: each implementation has a classmethod
    ``from_url(url, *, tombstone_seconds, **settings)`` (`backends.Opener`), where
    tombstone_seconds is how long a deleted name stays reserved when the backend
    decides it (Cloud Tasks keeps its own window), and settings are those its entry in
    `backends.BACKENDS` declares.
    """

    @abc.abstractmethod
    def insert(self, queue: Queue, task: NewTask) -> Task:
        """Store a new task with retry_count 0 and ETA max(task.eta_us, now).

        Raises Duplicate when the name is live or tombstoned, InvalidArgument when the
        ETA is more than limits.MAX_ETA_AHEAD_US after now (by the backend's clock).
        """

    @abc.abstractmethod
    def get(self, queue: Queue, task_id: str) -> Task:
        """Return the task with its payload; NotFound when unknown or deleted."""

    @abc.abstractmethod
    def list_tasks(self, queue: Queue) -> list[Task]:
        """Return up to limits.LIST_LIMIT live tasks without payloads, by ETA then name."""

    @abc.abstractmethod
    def delete(self, queue: Queue, task_id: str) -> None:
        """Remove the task whatever its lease and tombstone its name.

        NotFound when unknown, with a message saying so when already deleted.
        """

    @abc.abstractmethod
    def lease(self, queue: Queue, request: LeaseRequest) -> list[Task]:
        """Lease up to num_tasks tasks whose ETA has passed, by ETA then name.

        Each returned task has ETA now + lease_us, retry_count one higher and its
        payload. No task is returned to two calls while its lease is valid. A task
        already leased max_leases times is dropped and tombstoned instead.
        """

    @abc.abstractmethod
    def modify_lease(self, queue: Queue, task_id: str, lease_us: int, token_us: int | None) -> Task:
        """Set the ETA of a leased task to now + lease_us (0 releases it).

        The lease must be live (ETA after now) and, when token_us is given, the task's
        ETA must equal it exactly; otherwise Conflict(LEASE_CONFLICT). NotFound when the
        task is unknown. retry_count does not change. Returns the task with its payload.
        """

    @abc.abstractmethod
    def queue_info(self, queue: Queue, *, with_stats: bool) -> QueueInfo:
        """Describe the queue; stats only when asked, as they cost more."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Return when the storage answers; raise Unavailable otherwise."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
