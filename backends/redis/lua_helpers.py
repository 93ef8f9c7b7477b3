"""The Lua scripts as Redis runs them: each script with the helpers of common.lua it uses.

common.lua is a list of top-level definitions, each a ``local function NAME(...)`` up to
its closing ``end`` at the start of a line, or a one-line ``local NAME = ...``, with the
comment lines just above it. A script gets a definition when its name appears in the
script's code or in a definition it gets, in common.lua's order (each definition uses
only earlier ones). Not all of them: Redis runs a script's top level on every call, and
each ``local function`` there makes a new closure each time, about a thousand
instructions of redis-server apiece (bench/README.md), whether the script calls it or not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FUNCTION = re.compile(r"local function ([A-Za-z_]\w*)\(")
_VALUE = re.compile(r"local ([A-Za-z_]\w*) = ")
_COMMENT = re.compile(r"--[^\n]*")
_STRING = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_NAME = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Definition:
    """One top-level definition of common.lua: its name, its text, the names it uses."""

    name: str
    text: str
    uses: frozenset[str]


def names_in(code: str) -> frozenset[str]:
    """The identifiers of Lua code, comments and string literals left out."""
    return frozenset(_NAME.findall(_STRING.sub("''", _COMMENT.sub("", code))))


def definitions(common: str) -> list[Definition]:
    """common.lua's definitions in order; anything else but comments and blank lines is an error."""
    found: list[Definition] = []
    comment: list[str] = []
    lines = iter(common.splitlines(keepends=True))
    for line in lines:
        if line.startswith("--"):
            comment.append(line)
            continue
        if not line.strip():
            comment = []
            continue
        if match := _FUNCTION.match(line):
            body = [line]
            for inner in lines:
                body.append(inner)
                if inner.rstrip("\n") == "end":
                    break
            else:
                raise ValueError(f"common.lua: function {match[1]} has no `end` at the start of a line")
        elif match := _VALUE.match(line):
            body = [line]
        else:
            raise ValueError(f"common.lua: not a definition: {line.strip()!r}")
        code = "".join(body)
        found.append(Definition(match[1], "".join(comment) + code, names_in(code) - {match[1]}))
        comment = []
    return found


def assemble(common: str, script: str) -> str:
    """``script`` preceded by the definitions of ``common`` that it uses, directly or not."""
    helpers = definitions(common)
    wanted = set(names_in(script))
    for helper in reversed(helpers):
        if helper.name in wanted:
            wanted |= helper.uses
    return "".join(helper.text + "\n" for helper in helpers if helper.name in wanted) + script
