"""The backend contract: the Task Queue API's own verbs over small frozen values.

Times are integers in microseconds since the epoch. A backend never sees JSON or HTTP:
the front validates every argument against the wire contract before it calls here, so
a backend only reports what depends on stored state (unknown task, duplicate name, lost
lease) and outages, with the errors of `backends.errors`. The rules and limits of names and values are in
`backends.limits`.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, NoReturn

from backends.errors import Unsupported

#: How long a deleted task's name stays reserved, unless configured otherwise.
DEFAULT_TOMBSTONE_SECONDS = 7 * 24 * 3600
#: The most tasks one page of list_tasks_page returns.
PAGE_LIMIT = 1000
#: How many minutes activity() covers.
ACTIVITY_MINUTES = 60
MINUTE_US = 60 * 1_000_000

#: The names of the optional admin verbs, as found in ``Backend.supports``.
ADMIN_VERBS = frozenset(
    {
        "list_queues",
        "create_queue",
        "update_queue",
        "delete_queue",
        "purge_queue",
        "pause_queue",
        "resume_queue",
        "list_tasks_page",
        "dead_letters",
        "clear_tombstones",
        "activity",
    }
)
#: The parts of the v1 verbs a backend may lack, as found in ``Backend.supports``: a
#: backend without one raises Unsupported naming it (``Unsupported.feature``).
FEATURES = frozenset(
    {
        "named_insert",  # insert with the caller's id (names are unique and tombstoned)
        "delayed_insert",  # insert with an ETA ahead
        "get",
        "list_tasks",
        "delete_unleased",  # delete by the task's own id, whatever its lease
        "tag_lease",  # lease with groupByTag (and tag)
        "long_lease",  # leases and renewals past the backend's own ceiling, up to a week
        "stats",  # queue_info(with_stats=True)
        "any_max_leases",  # every max_leases from 1 up (queue.yaml's task_retry_limit)
    }
)


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
    """What an insert asks for. ``eta_us`` 0 means "available now"; a past ETA is kept
    as given, so that the task sorts before those due now (App Engine's rule), unless
    ``past_means_now`` (Cloud Tasks' rule for a past schedule_time). ``generated``: the
    caller gave no id, and ``id`` was made up by the front."""

    id: str
    payload: bytes
    tag: str | None = None
    eta_us: int = 0
    generated: bool = False
    past_means_now: bool = False


class Task(NamedTuple):
    """A stored task. ``eta_us`` is when it can next be leased (the v1 leaseTimestamp);
    ``payload`` is None where the call does not return payloads (list).

    Immutable like the other records here, but a named tuple rather than a frozen
    dataclass: a lease of 100 makes 100 of them, and a frozen dataclass sets each field
    through ``object.__setattr__`` (0.9 µs a task against 0.4).
    """

    id: str
    payload: bytes | None
    tag: str | None
    enqueue_us: int
    eta_us: int
    retry_count: int


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """A lease call. ``group_by_tag`` without ``tag`` leases the tag of the oldest
    available task (untagged tasks form a group of their own).

    ``max_bytes`` (0: no limit) bounds the response: a task counts as `task_size`
    with ``task_bytes``. Tasks past the budget are not leased and stay available, nor
    is any task after the first that does not fit. ``min_one``: the first available
    task is leased whatever its size, so that a lone big task is not stuck; without it
    (a part of a batch whose budget is nearly spent) a call may lease nothing.
    """

    num_tasks: int
    lease_us: int
    group_by_tag: bool = False
    tag: str | None = None
    max_bytes: int = 0
    task_bytes: int = 0
    min_one: bool = True


def task_size(task: Task, task_bytes: int, unread: int | None = None) -> int:
    """What a task counts against a response budget (`LeaseRequest`, list_tasks_page):
    ``task_bytes`` plus its id, six bytes per byte of its tag and its payload in base64
    (four bytes per three, rounded up), an upper bound of what it costs in JSON.
    ``unread``: the length of a payload not read yet (the task's ``payload`` is None)."""
    tag_bytes = len(task.tag.encode()) if task.tag else 0
    length = len(task.payload) if task.payload is not None else unread
    payload = 4 * -(-length // 3) if length is not None else 0
    return task_bytes + len(task.id) + 6 * tag_bytes + payload


def first_within(
    tasks: list[Task], max_bytes: int, task_bytes: int, unread: Mapping[int, int] | None = None
) -> list[Task]:
    """The first of ``tasks`` whose `task_size` add up to ``max_bytes`` at most; one at least.
    ``unread``: by position in ``tasks``, the lengths of payloads not read yet."""
    used = 0
    for count, task in enumerate(tasks):
        used += task_size(task, task_bytes, unread.get(count) if unread else None)
        if count and used > max_bytes:
            return tasks[:count]
    return tasks


class TaskState(enum.StrEnum):
    """Where a task stands at one moment (see `state_of`)."""

    #: Its ETA has passed: the next lease may take it.
    AVAILABLE = "available"
    #: Its ETA is ahead and it was leased at least once: a worker holds it.
    LEASED = "leased"
    #: Its ETA is ahead and it was never leased: inserted for later.
    DELAYED = "delayed"


def state_of(task: Task, now_us: int) -> TaskState:
    """The state of ``task`` at ``now_us``, the one rule every front and backend uses."""
    if task.eta_us <= now_us:
        return TaskState.AVAILABLE
    return TaskState.LEASED if task.retry_count > 0 else TaskState.DELAYED


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of ``list_tasks_page``; ``next_page_token`` is None on the last page."""

    tasks: list[Task]
    next_page_token: str | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A task dropped after max_leases leases, as kept for the tombstone window."""

    id: str
    tag: str | None
    payload_size: int
    #: How many times it was leased before it was dropped.
    leases: int
    dropped_us: int


class LeaseResult(list[Task]):
    """What a lease returns: the tasks handed out, as a list, and in ``dropped`` the tasks
    the same call dropped after max_leases (so that a front can count and log them).

    A list rather than a dataclass so that callers that only want the tasks use it as one.
    """

    __slots__ = ("dropped",)

    def __init__(self, tasks: Iterable[Task] = (), dropped: Iterable[DeadLetter] = ()) -> None:
        super().__init__(tasks)
        self.dropped: tuple[DeadLetter, ...] = tuple(dropped)


@dataclass(frozen=True, slots=True)
class MinuteActivity:
    """What happened to a queue in one minute (``minute_us``, its start).

    ``depth`` is the number of live tasks after the last insert, delete, drop or purge of
    that minute; None when none happened (the depth then is the last one known).
    """

    minute_us: int
    inserted: int
    leased: int
    deleted: int
    depth: int | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts taken at one moment. A count is None when the backend cannot know it (the
    front then omits it, or shows "n/a", rather than invent it).

    ``available``: ETA passed; ``leased``: ETA ahead and leased at least once;
    ``delayed``: ETA ahead and never leased (`state_of`); ``dead_letters``: tasks
    dropped after max_leases that are still kept.
    """

    total_tasks: int
    oldest_eta_us: int | None
    leased_last_minute: int | None
    leased_last_hour: int | None
    available: int | None = None
    leased: int | None = None
    delayed: int | None = None
    dead_letters: int | None = None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    max_leases: int | None
    stats: QueueStats | None = None
    #: A paused queue accepts inserts and leases nothing.
    paused: bool = False


class Backend(abc.ABC):
    """Where tasks live. One instance serves every thread of a process.

    Building one is not part of the contract: each implementation has a classmethod
    ``from_url(url, *, tombstone_seconds, **settings)`` (`backends.Opener`), where
    tombstone_seconds is how long a deleted name stays reserved when the backend
    decides it (Cloud Tasks keeps its own window), and settings are those its entry in
    `backends.BACKENDS` declares.

    Every verb that takes a `Queue` reads ``queue.max_leases`` as queue.yaml's value,
    which wins over the stored one; None there means "use the value stored with the
    queue" (by create_queue or update_queue; unlimited when none).
    """

    #: The admin verbs (`ADMIN_VERBS`) and features (`FEATURES`) this backend can do;
    #: the others raise Unsupported, naming them. A class that does not set it keeps its
    #: parent's features and declares the admin verbs it overrides; an admin verb
    #: declared but not overridden is refused when the class is made.
    supports: frozenset[str] = FEATURES
    #: Why this backend cannot do a verb, by verb name, for the Unsupported message.
    unsupported_reasons: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        done = frozenset(verb for verb in ADMIN_VERBS if getattr(cls, verb) is not getattr(Backend, verb))
        if "supports" not in cls.__dict__:
            parent = next(base for base in cls.__mro__[1:] if "supports" in base.__dict__)
            cls.supports = done | (parent.__dict__["supports"] & FEATURES)
        if missing := sorted(cls.supports & ADMIN_VERBS - done):
            raise TypeError(f"{cls.__name__} declares {', '.join(missing)} in supports but does not implement it")

    @abc.abstractmethod
    def insert(self, queue: Queue, task: NewTask) -> Task:
        """Store a new task with retry_count 0 and ETA task.eta_us (now when 0; see NewTask).

        Raises InvalidArgument when the ETA is more than limits.MAX_ETA_AHEAD_US after
        now (by the backend's clock), and otherwise Duplicate when the name is live or
        tombstoned.
        """

    @abc.abstractmethod
    def get(self, queue: Queue, task_id: str) -> Task:
        """Return the task with its payload; NotFound when unknown, Deleted (a NotFound
        whose message says so) when deleted or dropped and its name is still reserved."""

    @abc.abstractmethod
    def list_tasks(
        self, queue: Queue, *, with_payloads: bool = False, max_bytes: int = 0, task_bytes: int = 0
    ) -> list[Task]:
        """Return up to limits.LIST_LIMIT live tasks by ETA then name, without payloads
        unless ``with_payloads`` (v1's list has none; the legacy-local dialect's has).

        max_bytes (0: no limit): the list ends before the first task that would take the
        tasks' `task_size` with ``task_bytes`` past it, but holds one task at least
        (`first_within`); a backend reads no payload of a task it leaves out."""

    @abc.abstractmethod
    def delete(self, queue: Queue, task_id: str, token_us: int | None = None) -> None:
        """Remove the task and tombstone its name.

        Without token_us, whatever its lease. With token_us (Cloud Tasks' acknowledge),
        only while the caller's lease runs: the lease must be live (ETA after now) and
        the task's ETA equal token_us exactly; otherwise Conflict(LEASE_CONFLICT).
        NotFound when unknown, with a message saying so when already deleted.
        """

    @abc.abstractmethod
    def lease(self, queue: Queue, request: LeaseRequest) -> LeaseResult:
        """Lease up to num_tasks tasks whose ETA has passed, by ETA then name.

        Each returned task has ETA now + lease_us, retry_count one higher and its
        payload. No task is returned to two calls while its lease is valid. A task
        already leased max_leases times is dropped and tombstoned instead, kept as a
        dead letter where the backend can (see dead_letters), and reported in the
        result's ``dropped`` where the backend knows of it. A paused queue leases nothing.
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
        """Describe the queue; stats only when asked, as they cost more.

        max_leases is queue.max_leases when given, else the stored value.
        """

    # -- admin verbs: the Cloud Tasks v2beta2 front and the console ---------------------
    # Optional: each defaults to Unsupported; a backend that does one overrides it (and
    # so declares it in ``supports``).

    def _unsupported(self, verb: str) -> NoReturn:
        reason = self.unsupported_reasons.get(verb) or f"{type(self).__name__} does not implement it"
        raise Unsupported(f"This backend does not support {verb}: {reason}", feature=verb)

    def list_queues(self, project: str | None = None) -> list[Queue]:
        """Every queue the backend knows (created, or used by an insert or lease since it
        was last deleted), of ``project`` or of all projects, sorted by (project, name),
        each with the max_leases stored with it (None: unlimited)."""
        self._unsupported("list_queues")

    def create_queue(self, queue: Queue) -> None:
        """Create the queue, storing queue.max_leases (None: unlimited).

        Duplicate when it exists already (created, or used).
        """
        self._unsupported("create_queue")

    def update_queue(self, queue: Queue) -> None:
        """Store queue.max_leases (None: unlimited) with an existing queue; NotFound when unknown."""
        self._unsupported("update_queue")

    def delete_queue(self, queue: Queue) -> None:
        """Drop the queue with its tasks, tombstones, dead letters, counters and settings.

        NotFound when unknown. A later insert or lease creates it anew.
        """
        self._unsupported("delete_queue")

    def purge_queue(self, queue: Queue) -> int | None:
        """Delete every task of the queue, leased or not, and return how many there were
        (None when the storage cannot tell).

        Their names are tombstoned as deleted ones are (App Engine's PurgeQueue and
        Cloud Tasks' keep them reserved), within the backend's bound of tombstones.
        NotFound when the queue is unknown.
        """
        self._unsupported("purge_queue")

    def pause_queue(self, queue: Queue) -> None:
        """Stop leases: a paused queue accepts inserts, leases nothing. NotFound when unknown."""
        self._unsupported("pause_queue")

    def resume_queue(self, queue: Queue) -> None:
        """Undo pause_queue; NotFound when unknown."""
        self._unsupported("resume_queue")

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
        """One page of the queue's live tasks, by ETA then name, at most page_size (1 to
        PAGE_LIMIT) of them.

        tag: only that tag ("" for untagged tasks). state: only tasks in that state now.
        page_token: the previous page's next_page_token, opaque; the next page starts
        after the last task of that page, by (ETA, name) at the time it was read. A
        token this backend did not make is InvalidArgument. with_payload: include
        payloads (else None). max_bytes (0: no limit): the page ends before the first
        task that would take the tasks' `task_size` with ``task_bytes`` past it (its
        payload counted only with_payload), but holds one task at least, so that paging
        goes on; next_page_token then continues after the last task returned.
        """
        self._unsupported("list_tasks_page")

    def dead_letters(self, queue: Queue, limit: int = 100) -> list[DeadLetter]:
        """The tasks dropped after max_leases still kept (for the tombstone window), the
        most recently dropped first, at most ``limit``.

        get() of such a task is NotFound with a message saying after how many leases
        it was dropped.
        """
        self._unsupported("dead_letters")

    def clear_tombstones(self, queue: Queue) -> int:
        """Free every tombstoned name of the queue at once; return how many there were.

        Dead letters stay listed.
        """
        self._unsupported("clear_tombstones")

    def activity(self, queue: Queue) -> list[MinuteActivity]:
        """The last ACTIVITY_MINUTES minutes, oldest first, one entry per minute, the last
        being the current minute; the same for every process sharing the storage."""
        self._unsupported("activity")

    @abc.abstractmethod
    def ping(self) -> None:
        """Return when the storage answers; raise Unavailable otherwise."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""


#: Every verb of the contract, by name: the core ones (abstract), the admin verbs, ping
#: and close.
VERBS = tuple(sorted(Backend.__abstractmethods__ | ADMIN_VERBS))
