"""Partial responses: Google's ``fields`` selector.

``items(id,payloadBase64),kind`` keeps ``kind`` and, of each item, ``id`` and
``payloadBase64``; ``items/id`` is the same as ``items(id)``; ``*`` matches every key.
A selector applies to each element of an array.
"""

from __future__ import annotations

import re
from typing import Any

from backends.errors import InvalidArgument

#: name -> what to keep of its value (None: all of it).
Selection = dict[str, "Selection | None"]

_TOKEN = re.compile(r"[A-Za-z0-9_*]+|[,/()]")
#: Deepest nesting a selector may have. The API's resources are three levels deep;
#: the parser recurses once per level, so an unbounded depth would exhaust the stack.
MAX_DEPTH = 16


def _invalid(text: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid field selection {text!r}", location="fields")


def parse(text: str) -> Selection:
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != text.replace(" ", "") or not tokens:
        raise _invalid(text)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        token = peek()
        if token is None:
            raise _invalid(text)
        position += 1
        return token

    def name() -> str:
        token = take()
        if token in ",/()":
            raise _invalid(text)
        return token

    def selection_list(depth: int) -> Selection:
        selection: Selection = {}
        while True:
            key, sub = item(depth)
            _merge(selection, key, sub)
            if peek() != ",":
                return selection
            take()

    def item(depth: int) -> tuple[str, Selection | None]:
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"Field selection nested deeper than {MAX_DEPTH} levels", location="fields")
        key = name()
        if peek() == "/":
            take()
            sub_key, sub = item(depth + 1)
            return key, {sub_key: sub}
        if peek() == "(":
            take()
            inner = selection_list(depth + 1)
            if take() != ")":
                raise _invalid(text)
            return key, inner
        return key, None

    selection = selection_list(1)
    if peek() is not None:
        raise _invalid(text)
    return selection


def _merge(selection: Selection, key: str, sub: Selection | None) -> None:
    if key not in selection:
        selection[key] = sub
        return
    current = selection[key]
    if current is None or sub is None:
        selection[key] = None
        return
    for sub_key, sub_sub in sub.items():
        _merge(current, sub_key, sub_sub)


def apply(value: Any, selection: Selection | None) -> Any:
    """What ``selection`` keeps of ``value``."""
    if selection is None:
        return value
    if isinstance(value, list):
        return [apply(element, selection) for element in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for key, element in value.items():
        if key in selection:
            kept[key] = apply(element, selection[key])
        elif "*" in selection:
            kept[key] = apply(element, selection["*"])
    return kept
