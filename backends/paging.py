"""Page tokens of ``Backend.list_tasks_page``, the same on every backend.

A token names the place after which the next page starts: the last listed task's ETA
(16 digits, so that text order is time order) and id, in URL-safe base64 so that callers
treat it as opaque. Tasks sort by `position`, which is (ETA, id).
"""

from __future__ import annotations

import base64
import binascii
import re

from backends.base import Task
from backends.errors import InvalidArgument

_POSITION = re.compile(r"[0-9]{16}[A-Za-z0-9_-]{1,500}")


def position(task: Task) -> str:
    """Where a task sorts among pages: its ETA (16 digits), then its id."""
    return f"{task.eta_us:016d}{task.id}"


def token_after(task: Task) -> str:
    """The token of the page that starts after ``task``."""
    return base64.urlsafe_b64encode(position(task).encode()).decode()


def position_of(token: str) -> str:
    """The place a token names; InvalidArgument when it names none."""
    try:
        found = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        found = ""
    if not _POSITION.fullmatch(found):
        raise InvalidArgument("page_token is not one this bridge gave out", location="pageToken")
    return found
