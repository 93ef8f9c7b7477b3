"""The wire encoding: JSON resources to backend values and back.

int64 fields travel as JSON strings and int32 as numbers; timestamps are µs since the
epoch (``stats.oldestTask`` is seconds); payloads are URL-safe base64. Request bodies
are checked here field by field, so a bad one is refused before the backend is called.
That is Google's dialect; the functions that read or write what another dialect
writes differently take the `Dialect` (`bridge.taskqueue.dialect`), Google's by default.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable
from typing import Any

import orjson

from backends.base import NewTask, QueueInfo, Task
from backends.errors import InvalidArgument
from backends.limits import (
    INT64,
    MAX_PAYLOAD_BYTES,
    MAX_TAG_BYTES,
    MAX_TASK_ID,
    TASK_ID,
    US,
    NameRules,
    check_tag,
    project_key,
)
from bridge import entropy
from bridge.taskqueue.dialect import GOOGLE, Dialect

_LONG_QUEUE = re.compile(r"projects/([^/]+)/taskqueues/([^/]+)")
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_STANDARD_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
#: Standard base64 to the URL-safe alphabet, as text.
_FROM_STANDARD = str.maketrans("+/", "-_")
#: What a Tasks resource costs besides its items, at most: kind, items, brackets.
TASKS_FRAME_BYTES = 100


def queue_path(project: str, queue: str) -> str:
    return f"projects/{project}/taskqueues/{queue}"


def decode_payload(text: Any, dialect: Dialect = GOOGLE) -> bytes:
    if not isinstance(text, str):
        raise InvalidArgument("payloadBase64 must be a string", location="payloadBase64")
    if len(text) > (MAX_PAYLOAD_BYTES * 4) // 3 + 4:
        raise InvalidArgument("payloadBase64 is larger than 1 MiB once decoded", location="payloadBase64")
    if not _URLSAFE_B64.fullmatch(text):
        if not dialect.standard_base64:
            raise InvalidArgument(
                "payloadBase64 must be URL-safe base64: '-' and '_' instead of '+' and '/'", location="payloadBase64"
            )
        # One alphabet or the other, never both in one payload.
        if not _STANDARD_B64.fullmatch(text):
            raise InvalidArgument("payloadBase64 must be base64 in one alphabet", location="payloadBase64")
        text = text.translate(_FROM_STANDARD)
    bare = text.rstrip("=")
    try:
        payload = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgument("payloadBase64 is not valid base64", location="payloadBase64") from None
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidArgument("payloadBase64 is larger than 1 MiB once decoded", location="payloadBase64")
    return payload


def _int64(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not INT64.matches(str(value)):
        raise InvalidArgument(f"{name} must be an integer (int64, as a string)", location=name)
    return int(value)


def _check_names(body: dict[str, Any], project: str, queue: str, task_id: str | None, names: NameRules) -> None:
    """A body may name its task and queue; when it does, the names must be the URL's.
    A null name is no name, as in every other field."""
    if task_id is not None and body.get("id") is not None and body["id"] != task_id:
        raise InvalidArgument(f"id {body['id']!r} does not match the task in the URL", location="id")
    name = body.get("queueName")
    if name is None:
        return
    long = _LONG_QUEUE.fullmatch(name) if isinstance(name, str) else None
    if name == queue or (long and long.group(2) == queue and _same_project(long.group(1), project, names)):
        return
    raise InvalidArgument(f"queueName {name!r} does not match the queue in the URL", location="queueName")


def _same_project(a: str, b: str, names: NameRules) -> bool:
    try:
        return project_key(a, names) == project_key(b, names)
    except InvalidArgument:
        return False


def read_new_task(body: Any, project: str, queue: str, dialect: Dialect = GOOGLE) -> NewTask:
    """The insert request; server-owned fields (enqueueTimestamp, retry_count) are ignored."""
    if not isinstance(body, dict):
        raise InvalidArgument("The request body must be a JSON object (a Task)", location="body")
    _check_names(body, project, queue, None, dialect.names)
    task_id = body.get("id")
    generated = task_id is None or task_id == ""
    if generated:
        task_id = entropy.task_id()
    elif not TASK_ID.matches(task_id):
        raise InvalidArgument(f"id must be {TASK_ID.described}", location="id")
    payload = decode_payload(body["payloadBase64"], dialect) if body.get("payloadBase64") is not None else b""
    # Absent or 0: now. A past ETA is kept, as App Engine kept it; before the epoch is
    # no time at all (the stub's INVALID_ETA).
    eta = _int64(body, "leaseTimestamp") or 0
    if eta < 0:
        raise InvalidArgument("leaseTimestamp must not be negative (µs since the epoch)", location="leaseTimestamp")
    return NewTask(task_id, payload, check_tag(body.get("tag")), eta, generated)


def read_lease_token(body: Any, project: str, queue: str, task_id: str, dialect: Dialect = GOOGLE) -> int | None:
    """The leaseTimestamp an update or patch carries as proof of its lease, if any."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidArgument("The request body must be a JSON object (a Task)", location="body")
    _check_names(body, project, queue, task_id, dialect.names)
    return _int64(body, "leaseTimestamp")


def task_json(task: Task, queue_name: str, dialect: Dialect = GOOGLE) -> dict[str, Any]:
    return task_items((task,), queue_name, dialect)[0]


def task_items(tasks: Iterable[Task], queue_name: str, dialect: Dialect = GOOGLE) -> list[dict[str, Any]]:
    """Task resources. This runs for every task of a lease, so it is one loop with the
    base64 encoding inline, and a lease's shared leaseTimestamp is formatted once
    (bench/README.md has what each step saved).

    binascii, not base64.urlsafe_b64encode (two Python calls around it), and not
    pybase64, though it encodes faster: it lets go of the GIL on every call, and under
    gunicorn's threads a lease of 100 then changed threads 100 times (bench/README.md).
    """
    items = []
    b2a = binascii.b2a_base64
    # The dialect's choices, read once per call and not per task.
    int64, alphabet, untagged = dialect.int64, dialect.payload_alphabet, dialect.untagged
    texts: dict[int, str | int] = {}  # each distinct leaseTimestamp, as written
    # Unpacked: a Task's fields by name are a descriptor lookup each.
    for task_id, payload, tag, enqueue_us, eta_us, retry_count in tasks:
        resource: dict[str, Any] = {
            "kind": "taskqueues#task",
            "id": task_id,
            "queueName": queue_name,
            "enqueueTimestamp": int64(enqueue_us),
            "leaseTimestamp": texts.get(eta_us) or texts.setdefault(eta_us, int64(eta_us)),
            "retry_count": retry_count,
        }
        if payload is not None:
            resource["payloadBase64"] = b2a(payload, newline=False).translate(alphabet).decode("ascii")
        if tag is not None:
            resource["tag"] = tag
        elif untagged is not None:
            resource["tag"] = untagged
        items.append(resource)
    return items


def tasks_json(kind: str, tasks: list[Task], queue_name: str, dialect: Dialect = GOOGLE) -> dict[str, Any]:
    """A Tasks or Tasks2 resource; an empty one has no ``items`` at all, unless the
    dialect says otherwise."""
    resource: dict[str, Any] = {"kind": kind}
    if tasks or dialect.empty_items:
        resource["items"] = task_items(tasks, queue_name, dialect)
    return resource


def queue_json(
    info: QueueInfo,
    queue_name: str,
    consumers: tuple[str, ...],
    producers: tuple[str, ...],
    admins: tuple[str, ...] = (),
    dialect: Dialect = GOOGLE,
) -> dict[str, Any]:
    int64 = dialect.int64
    resource: dict[str, Any] = {
        "kind": "taskqueues#taskqueue",
        "id": queue_name,
        "acl": {"adminEmails": list(admins), "consumerEmails": list(consumers), "producerEmails": list(producers)},
    }
    if info.max_leases is not None:
        resource["maxLeases"] = info.max_leases
    if info.stats is not None:
        stats: dict[str, Any] = {
            "totalTasks": info.stats.total_tasks,
            "oldestTask": int64((info.stats.oldest_eta_us or 0) // US),
        }
        if info.stats.leased_last_minute is not None:
            stats["leasedLastMinute"] = int64(info.stats.leased_last_minute)
        if info.stats.leased_last_hour is not None:
            stats["leasedLastHour"] = int64(info.stats.leased_last_hour)
        resource["stats"] = stats
    return resource


@functools.lru_cache(maxsize=1024)
def task_bytes(queue_name: str) -> int:
    """What a task costs in a Tasks response besides its id, tag and payload, at most.

    Measured on a pretty-printed task with the longest numbers, plus the indentation
    and separators of an item of ``items``.
    """
    widest = Task("", b"", "", 10**19 - 1, 10**19 - 1, 2**31 - 1)
    return len(orjson.dumps(task_json(widest, queue_name), option=orjson.OPT_INDENT_2)) + 64


def max_task_bytes(queue_name: str) -> int:
    """The most one task with its payload weighs in an answer (get, insert, a lease)."""
    return max_listed_bytes(queue_name) + 4 * -(-MAX_PAYLOAD_BYTES // 3)


def max_listed_bytes(queue_name: str) -> int:
    """The most one task of a list (no payload) weighs in its answer."""
    return task_bytes(queue_name) + MAX_TASK_ID + 6 * MAX_TAG_BYTES
