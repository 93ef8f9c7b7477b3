"""The contract tests the Cloud Tasks backend cannot pass, read from KNOWN_DIFFERENCES.md.

Each row of that file's table names a test (``tests/file.py::test_name``, optionally
with its parameter id) and why Cloud Tasks differs. Those tests run on ``cloudtasks``
as ``xfail(strict=True)``, and on ``cloudtasks-bridge`` (the same backend on the
bridge's own v2beta2 front) unless the row names the ``[cloudtasks]`` id alone: one
that starts to pass fails the run, so a difference that disappears is noticed and its
row removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "KNOWN_DIFFERENCES.md"
BACKEND = "cloudtasks"
_ROW = re.compile(r"^\|\s*`(tests/[^`]+)`\s*\|(.+)\|\s*$")


@dataclass(frozen=True, slots=True)
class Difference:
    test: str
    reason: str


def read(text: str | None = None) -> list[Difference]:
    """The rows of the table, in order."""
    text = FILE.read_text() if text is None else text
    rows = (_ROW.match(line) for line in text.splitlines())
    return [Difference(row.group(1), row.group(2).strip()) for row in rows if row]


def mark_known_differences(items: list[pytest.Item]) -> None:
    differences = {difference.test: difference for difference in read()}
    for item in items:
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("variant") if callspec is not None else None
        # The Cloud Tasks backend on the fake, and on the bridge's own v2beta2 front.
        if not str(getattr(variant, "backend", "")).startswith(BACKEND):
            continue
        found = differences.get(item.nodeid) or differences.get(item.nodeid.split("[", 1)[0])
        if found is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"known difference on {BACKEND}: {found.reason}"))
