"""Just enough of a Dockerfile reader to run the image's command outside Docker.

There is no Docker engine where the tests run, so the tests start the bridge the way
the image would: with its ENV, in its WORKDIR (mapped onto the repository), by its CMD,
and probe it with its HEALTHCHECK. Reading them from the Dockerfile keeps the test and
the image from drifting apart.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Dockerfile:
    base: str = ""
    args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = ""
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    copies: list[list[str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _pairs(arguments: str, known: dict[str, str]) -> dict[str, str]:
    """KEY=VALUE pairs as ENV, ARG and LABEL write them, with $VAR and ${VAR} expanded."""
    pairs = {}
    for token in shlex.split(arguments):
        key, _, value = token.partition("=")
        pairs[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: known.get(m.group(1), ""), value)
    return pairs


def _exec_form(arguments: str) -> list[str]:
    command = json.loads(arguments)
    assert isinstance(command, list), f"use the exec form (a JSON list), not {arguments!r}"
    return [str(part) for part in command]


def parse(path: Path, outer_env: dict[str, str]) -> Dockerfile:
    """Read ``path``; ``$VAR`` in ENV values expands from earlier ENV/ARG, else ``outer_env``."""
    result = Dockerfile()
    for word, arguments in _instructions(path.read_text()):
        known = {**outer_env, **result.args, **result.env}
        if word == "FROM":
            result.base = arguments
        elif word == "ARG":
            result.args.update(_pairs(arguments, known))
        elif word == "LABEL":
            result.labels.update(_pairs(arguments, known))
        elif word == "ENV":
            result.env.update(_pairs(arguments, known))
        elif word == "WORKDIR":
            result.workdir = arguments
        elif word == "USER":
            result.user = arguments
        elif word == "COPY":
            result.copies.append(shlex.split(arguments))
        elif word == "RUN":
            result.runs.append(arguments)
        elif word == "CMD":
            result.cmd = _exec_form(arguments)
        elif word == "HEALTHCHECK":
            options, _, command = arguments.partition("CMD ")
            result.healthcheck_options = dict(option.lstrip("-").split("=", 1) for option in options.split())
            result.healthcheck = _exec_form(command)
    return result
