"""The contract tests the Cloud Tasks and Pub/Sub backends cannot pass, read from
KNOWN_DIFFERENCES.md.

Each row of that file's tables names a test (``tests/<file>.py::test_name``, optionally
with its parameter id) and why the backend differs; a table belongs to the backend its
heading names. The tests of the Cloud Tasks table run on ``cloudtasks`` as
``xfail(strict=True)``, and on ``cloudtasks-bridge`` (the same backend on the bridge's
own v2beta2 front) unless the row names the ``[cloudtasks]`` id alone; those of the
Pub/Sub table on ``pubsub``. One that starts to pass fails the run, so a difference that
disappears is noticed and its row removed. (What a backend declares it cannot do at all
is skipped instead: tests/support/capabilities.py.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "KNOWN_DIFFERENCES.md"
#: A table's backend, by the words of its heading; the Cloud Tasks one also covers
#: ``cloudtasks-bridge`` (variants are matched by their start).
HEADINGS = {"Cloud Tasks": "cloudtasks", "Pub/Sub": "pubsub"}
_ROW = re.compile(r"^\|\s*`(tests/[^`]+)`\s*\|(.+)\|\s*$")


@dataclass(frozen=True, slots=True)
class Difference:
    test: str
    reason: str
    backend: str = "cloudtasks"


def read(text: str | None = None) -> list[Difference]:
    """The rows of the tables, in order, each with the backend of its heading."""
    text = FILE.read_text() if text is None else text
    found = []
    backend = "cloudtasks"
    for line in text.splitlines():
        if line.startswith("#"):
            backend = next((name for words, name in HEADINGS.items() if words in line), backend)
        row = _ROW.match(line)
        if row:
            found.append(Difference(row.group(1), row.group(2).strip(), backend))
    return found


def mark_known_differences(items: list[pytest.Item]) -> None:
    differences = {(difference.backend, difference.test): difference for difference in read()}
    for item in items:
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("variant") if callspec is not None else None
        name = str(getattr(variant, "backend", ""))
        # The Cloud Tasks backend on the fake, and on the bridge's own v2beta2 front.
        backend = next((backend for backend in HEADINGS.values() if name.startswith(backend)), None)
        if backend is None:
            continue
        found = differences.get((backend, item.nodeid)) or differences.get((backend, item.nodeid.split("[", 1)[0]))
        if found is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"known difference on {backend}: {found.reason}"))
