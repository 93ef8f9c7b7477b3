"""Structural comparison of two normalised records.

A record maps each observation's label to ``{"status": …, "body": …}``. Two values are
the same only when they have the same JSON type and value: ``"1"`` and ``1`` differ, and
so do ``1`` and ``1.0``. A key or list element present on one side only is a difference
against `ABSENT`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


#: What stands for a key, element or observation that one side does not have.
ABSENT: Any = _Absent()
#: How long a value may be when shown; a 1 MiB payload is not worth printing whole.
SHOWN_CHARS = 120


@dataclass(frozen=True)
class Difference:
    #: Where: the observation's label, then the path inside it (``lease-1.body.items[0].id``).
    field: str
    a: Any
    b: Any


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def differences(a: Any, b: Any, path: str = "") -> Iterator[Difference]:
    """Every leaf where ``a`` and ``b`` differ, in the order of ``a``'s keys."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(key for key in b if key not in a)]:
            yield from differences(a.get(key, ABSENT), b.get(key, ABSENT), f"{path}.{key}" if path else str(key))
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            yield from differences(a[i] if i < len(a) else ABSENT, b[i] if i < len(b) else ABSENT, f"{path}[{i}]")
    elif not _same(a, b):
        yield Difference(path, a, b)


def as_json(value: Any) -> Any:
    """``value`` for a JSON report: ABSENT becomes the string "<absent>"."""
    return repr(ABSENT) if value is ABSENT else value


def shown(value: Any) -> str:
    """A short, JSON-looking rendering for the terminal."""
    text = repr(ABSENT) if value is ABSENT else json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) > SHOWN_CHARS:
        text = f"{text[: SHOWN_CHARS - 20]}… ({len(text)} chars)"
    return text
