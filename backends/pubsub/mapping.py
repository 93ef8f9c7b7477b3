"""How the v1 API's queues and tasks are Pub/Sub topics, subscriptions and messages.

URL::

    pubsub://projects/PROJECT[?projects=APP,APP|*&create_queues=true&prefix=tq-&emulator=HOST:PORT&attempts=3&timeout=10]

A queue Q of a v1 project is, in Pub/Sub project PROJECT (names after ``prefix``,
default ``tq-``, which also makes every name start with a letter, as Pub/Sub requires):

    topic         PREFIX+Q         where inserts are published (the tag as attribute ``tag``)
    subscription  PREFIX+Q         where leases pull from; exactly-once delivery, and a
                                   dead-letter policy (max_delivery_attempts = maxLeases)
    topic         PREFIX+Q.dead    the dead-letter topic: tasks leased maxLeases times
    subscription  PREFIX+Q.dead    keeps them (a topic without one drops what it gets)

Queue names have no ``.``, so a dead-letter name never meets a queue's.

A leased task's id is its lease: the message's ack id, with its publish time and
delivery attempt, in URL-safe base64 behind the letter ``L`` (`lease_id`, `read_lease_id`).
Any bridge process can acknowledge or extend the lease from it alone, and exactly-once
delivery makes it the lease's fence: once the message is handed out again, the old ack
id fails. Ack ids are about 200 bytes, and an id holds one of up to 360 within the
API's 500 characters. An insert's answer carries the message id, which names no lease.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

from backends import url_options
from backends.base import Queue, Task
from backends.errors import NotFound
from backends.limits import QUEUE_NAME_UNDERSCORED, US
from backends.pubsub.errors import unsupported

#: Pub/Sub's ceiling on an ack deadline (seconds): the longest lease it can hold.
MAX_ACK_DEADLINE = 600
#: The subscription's own ack deadline: how long a message pulled by a bridge that died
#: before it set the lease's deadline stays away (Pub/Sub's least).
SUBSCRIPTION_ACK_DEADLINE = 10
#: What Pub/Sub allows as a dead-letter policy's max_delivery_attempts (maxLeases).
DELIVERY_ATTEMPTS = range(5, 101)
#: maxLeases when queue.yaml gives none: Pub/Sub's most. Pub/Sub counts deliveries
#: (retry_count) only under a dead-letter policy, so every queue has one.
DEFAULT_MAX_LEASES = 100
DEFAULT_PREFIX = "tq-"
#: The attribute that carries a task's tag (as Google's pull-queue migration sample does).
TAG = "tag"
#: Pub/Sub refuses a message without data or attributes; an empty untagged task has this one.
EMPTY = "empty"
DEAD_SUFFIX = ".dead"
OPTIONS = ("projects", "create_queues", "prefix", "emulator", "attempts", "timeout")

_URL_PATH = r"projects/([a-z][a-z0-9.:-]{1,99})"
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_.~+%-]{0,99}")
#: A lease id: "L", then base64 of the header (publish µs, delivery attempt) and the ack id.
_LEASE = "L"
_HEADER = struct.Struct(">qH")


@dataclass(frozen=True, slots=True)
class Place:
    """The Pub/Sub project the bridge's queues live in, and which v1 projects name it."""

    project: str
    prefix: str
    #: The v1 projects that name ``project``; None: each v1 project names its namesake.
    v1_projects: frozenset[str] | None

    def serving(self, v1_project: str) -> str:
        """The Pub/Sub project a v1 project's queues live in; NotFound if none."""
        if self.v1_projects is None:
            return v1_project
        if v1_project in self.v1_projects:
            return self.project
        served = ", ".join(sorted(self.v1_projects))
        raise NotFound(
            f"Project {v1_project} is not served here: this bridge serves {served} on Pub/Sub project {self.project}",
            location="project",
        )

    def topic(self, project: str, queue: str) -> str:
        return f"projects/{project}/topics/{self.prefix}{queue}"

    def subscription(self, project: str, queue: str) -> str:
        return f"projects/{project}/subscriptions/{self.prefix}{queue}"

    def queue_of(self, subscription: str) -> str | None:
        """The queue a subscription's full name serves, or None when it serves none."""
        short = subscription.rsplit("/", 1)[-1]
        if not short.startswith(self.prefix) or short.endswith(DEAD_SUFFIX):
            return None
        name = short[len(self.prefix) :]
        # '_' too: Pub/Sub's names hold it, and a legacy-local bridge's queues may.
        return name if QUEUE_NAME_UNDERSCORED.matches(name) else None

    @classmethod
    def from_url(cls, url: str) -> tuple[Place, dict[str, str]]:
        parts = urlsplit(url)
        match = re.fullmatch(_URL_PATH, parts.netloc + parts.path.rstrip("/"))
        if parts.scheme != "pubsub" or match is None:
            raise ValueError(f"invalid Pub/Sub URL {url!r}: expected pubsub://projects/PROJECT")
        options = url_options(url, OPTIONS)
        prefix = options.get("prefix", DEFAULT_PREFIX)
        if not _PREFIX.fullmatch(prefix) or prefix.lower().startswith("goog"):
            raise ValueError(
                f"prefix {prefix!r} in {url!r} must start with a letter, not 'goog', and hold only "
                "letters, digits and - _ . ~ + % (Pub/Sub's rule for names)"
            )
        project = match.group(1)
        names = options.get("projects", project)
        v1 = None if names == "*" else frozenset(p.strip() for p in names.split(",") if p.strip())
        return cls(project, prefix, v1), options


def dead_letter(name: str) -> str:
    """The dead-letter topic (or subscription) of a queue's topic (or subscription)."""
    return name + DEAD_SUFFIX


def us_of(seconds: int, nanos: int) -> int:
    return seconds * US + nanos // 1000


def lease_id(ack_id: str, publish_us: int, attempt: int) -> str:
    """The id a leased task carries: everything a later call needs to find its lease."""
    packed = _HEADER.pack(publish_us, min(attempt, 0xFFFF)) + ack_id.encode()
    return _LEASE + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Lease:
    """What a lease id says."""

    ack_id: str
    publish_us: int
    attempt: int


def read_lease_id(task_id: str) -> Lease | None:
    """The lease behind ``task_id``; None when the id is not a lease's (an insert's
    message id, a name)."""
    if not task_id.startswith(_LEASE):
        return None
    text = task_id[1:]
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        publish_us, attempt = _HEADER.unpack_from(packed)
        ack_id = packed[_HEADER.size :].decode()
    except (binascii.Error, ValueError, struct.error):
        return None
    return Lease(ack_id, publish_us, attempt) if ack_id else None


def leased_task(lease: Lease, task_id: str, payload: bytes | None, tag: str | None, eta_us: int) -> Task:
    """A leased task as the contract gives it; retry_count is Pub/Sub's delivery attempt."""
    return Task(task_id, payload, tag, lease.publish_us, eta_us, lease.attempt)


def max_delivery_attempts(queue: Queue) -> int:
    """The queue's max_delivery_attempts (maxLeases); Unsupported for what Pub/Sub cannot hold."""
    if queue.max_leases is None:
        return DEFAULT_MAX_LEASES
    if queue.max_leases not in DELIVERY_ATTEMPTS:
        raise unsupported("any_max_leases", detail=f"queue {queue.name} asks for {queue.max_leases}")
    return queue.max_leases
