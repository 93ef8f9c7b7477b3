"""The wire contract's name rules and limits, each defined once (docs/wire-contract.md §1.3).

The HTTP front validates requests with them, the backends size their calls with them,
and the compat checker recognises valid values with them. A name rule matches the
whole string: Python's ``$`` also matches before a final newline, so every rule here
is applied with ``fullmatch``, and callers test a value through `Name.matches`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from backends.errors import InvalidArgument

#: Microseconds in a second: every time in the API and the backends is in µs.
US = 1_000_000


class Name:
    """A rule a name must meet as a whole, and the words that describe it."""

    def __init__(self, pattern: str, described: str) -> None:
        self.regex = re.compile(pattern)
        #: What a valid value is, for the message that refuses an invalid one.
        self.described = described

    def matches(self, value: object) -> TypeGuard[str]:
        return isinstance(value, str) and self.regex.fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"Name({self.regex.pattern!r})"


@dataclass(frozen=True, slots=True)
class Bounds:
    """An inclusive range of whole numbers."""

    low: int
    high: int

    def __contains__(self, value: int) -> bool:
        return self.low <= value <= self.high


#: The longest task name.
MAX_TASK_ID = 500
#: A task's name; one is generated when an insert gives none.
TASK_ID = Name(rf"[A-Za-z0-9_-]{{1,{MAX_TASK_ID}}}", f"1-{MAX_TASK_ID} letters, digits, '_' or '-'")
#: A queue's name (queue.yaml and URLs alike).
QUEUE_NAME = Name(r"[A-Za-z0-9-]{1,100}", "1-100 letters, digits or '-'")
#: A project as a call names it: an application id with an optional partition ("s~",
#: "dev~", …) and domain ("example.com:"); group 1 is the id without the partition.
PROJECT = Name(
    r"(?:[a-z0-9-]+~)?((?:[a-z0-9][a-z0-9.-]*:)?[A-Za-z0-9][A-Za-z0-9-]{0,99})",
    "an application id, optionally with a partition (s~) and a domain (example.com:)",
)
#: The same two rules with '_' also allowed where '-' is (``test_project``, ``test_queue``):
#: the names the local stand-ins of 2017 accepted, and workers written for them use.
QUEUE_NAME_UNDERSCORED = Name(r"[A-Za-z0-9_-]{1,100}", "1-100 letters, digits, '_' or '-'")
PROJECT_UNDERSCORED = Name(
    r"(?:[a-z0-9-]+~)?((?:[a-z0-9][a-z0-9.-]*:)?[A-Za-z0-9][A-Za-z0-9_-]{0,99})",
    "an application id (letters, digits, '_' or '-'), optionally with a partition (s~) and a domain",
)
#: An int64 written in decimal (JSON string or query parameter).
INT64 = Name(r"-?[0-9]{1,19}", "an integer")

#: How many tasks one lease may ask for (numTasks).
NUM_TASKS = Bounds(1, 1000)
#: How long a lease may last, in seconds (leaseSecs, newLeaseSeconds): up to a week.
LEASE_SECONDS = Bounds(0, 7 * 24 * 3600)
#: The largest payload, decoded.
MAX_PAYLOAD_BYTES = 1024 * 1024
#: The longest tag, in bytes of UTF-8.
MAX_TAG_BYTES = 500
#: The most tasks one list call returns.
LIST_LIMIT = 100
#: How far ahead of now an insert may schedule a task's first availability.
MAX_ETA_AHEAD_US = 30 * 24 * 3600 * US


@dataclass(frozen=True, slots=True)
class NameRules:
    """The rules a deployment's project and queue names meet: every front, the console
    and queue.yaml of one bridge take the same names, as they reach the same queues."""

    project: Name
    queue: Name

    def app_id(self, project: str) -> str | None:
        """The application id of a project name, without its partition prefix (``s~app``
        and ``app`` name the same queues); None when ``project`` is not a project name."""
        match = self.project.regex.fullmatch(project)
        return match.group(1) if match else None


#: Google's names: what the App Engine and Cloud Tasks services took.
GOOGLE_NAMES = NameRules(PROJECT, QUEUE_NAME)
#: Google's names and '_' (see PROJECT_UNDERSCORED). Redis keys hold them as they are;
#: Cloud Tasks cannot, so its backend refuses a queue named so.
UNDERSCORED_NAMES = NameRules(PROJECT_UNDERSCORED, QUEUE_NAME_UNDERSCORED)
#: The names each dialect of the v1 API takes (bridge.taskqueue.dialect), by the name
#: ``--dialect`` gives it; settings check ``--projects`` with them.
DIALECT_NAMES: dict[str, NameRules] = {"google": GOOGLE_NAMES, "legacy-local": UNDERSCORED_NAMES}


def app_id(project: str) -> str | None:
    """`NameRules.app_id` under Google's names."""
    return GOOGLE_NAMES.app_id(project)


def project_key(project: str, names: NameRules = GOOGLE_NAMES) -> str:
    """The application id without its partition prefix: what names the queue's storage.

    InvalidArgument (400, location ``project``) when ``project`` is no project name
    under ``names`` (the deployment's: `bridge.gate.access.Admission` passes them)."""
    # NameRules.app_id, inline: every v1 request comes here, and a Python call less
    # pays for the rules being a parameter (bench/README.md).
    match = names.project.regex.fullmatch(project)
    if match is None:
        raise InvalidArgument(f"Invalid project: {project!r} must be {names.project.described}", location="project")
    return match.group(1)


def check_tag(tag: Any, location: str = "tag") -> str | None:
    """A valid tag, or None for no tag (an empty tag is no tag)."""
    if tag is None:
        return None
    if not isinstance(tag, str):
        raise InvalidArgument(f"{location} must be a string", location=location)
    try:
        size = len(tag.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(f"{location} must be valid UTF-8 text", location=location) from None
    if size > MAX_TAG_BYTES:
        raise InvalidArgument(f"{location} is {size} bytes; the limit is {MAX_TAG_BYTES}", location=location)
    return tag or None
