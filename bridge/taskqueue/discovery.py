"""The Discovery document in `api_data/`, and the routes and parameter rules it defines.

The document is the single description of the API: the bridge serves it to clients,
builds its URL rules from each method's ``path`` and ``httpMethod``, and validates
parameters by its ``type``, ``required`` and ``enum``. The rules a value must meet
beyond those (a queue name's alphabet, numTasks' range) come from `backends.limits`,
by parameter name (a project's and a queue's from the deployment's `NameRules`):
Google's document carried none, and a client enforces a ``pattern`` itself, raising
before it sends, where the real service answered with a 400.
Adding a method means describing it there and writing its handler.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from backends.errors import InvalidArgument
from backends.limits import GOOGLE_NAMES, INT64, LEASE_SECONDS, NUM_TASKS, TASK_ID, Bounds, Name, NameRules
from bridge.errors import Required

DOCUMENT = "taskqueue.v1beta2.json"
_BOOLEANS = {"true": True, "false": False}


def _rules(names: NameRules) -> dict[str, Name]:
    """What a string parameter's value must be, by parameter name."""
    return {"project": names.project, "taskqueue": names.queue, "task": TASK_ID}


#: The range of an integer parameter, by parameter name.
_BOUNDS: dict[str, Bounds] = {"numTasks": NUM_TASKS, "leaseSecs": LEASE_SECONDS, "newLeaseSeconds": LEASE_SECONDS}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    location: str
    required: bool = False
    rule: Name | None = None
    bounds: Bounds | None = None
    enum: tuple[str, ...] | None = None
    default: str | None = None

    @classmethod
    def from_doc(cls, name: str, doc: Mapping[str, Any], names: NameRules = GOOGLE_NAMES) -> Param:
        return cls(
            name=name,
            type=doc["type"],
            location=doc["location"],
            required=bool(doc.get("required")),
            rule=_rules(names).get(name),
            bounds=_BOUNDS.get(name),
            enum=tuple(doc["enum"]) if "enum" in doc else None,
            default=doc.get("default"),
        )

    def parse(self, raw: str | None) -> Any:
        """The typed value of ``raw`` (None when absent and optional), or a 400 naming it."""
        if raw is None:
            if self.required:
                raise Required(f"Required parameter: {self.name}", location=self.name)
            raw = self.default
            if raw is None:
                return None
        if self.type == "integer":
            if not INT64.matches(raw):
                raise InvalidArgument(f"Invalid value for {self.name}: {raw!r} is not an integer", location=self.name)
            value: Any = int(raw)
            if self.bounds is not None and value not in self.bounds:
                low, high = self.bounds.low, self.bounds.high
                raise InvalidArgument(
                    f"Invalid value for {self.name}: {value} is not between {low} and {high}", location=self.name
                )
            return value
        if self.type == "boolean":
            if raw not in _BOOLEANS:
                message = f"Invalid value for {self.name}: {raw!r} is not true or false"
                raise InvalidArgument(message, location=self.name)
            return _BOOLEANS[raw]
        if self.rule is not None and not self.rule.matches(raw):
            raise InvalidArgument(
                f"Invalid value for {self.name}: {raw!r} must be {self.rule.described}", location=self.name
            )
        if self.enum is not None and raw not in self.enum:
            raise InvalidArgument(
                f"Invalid value for {self.name}: {raw!r} is not one of {', '.join(self.enum)}", location=self.name
            )
        return raw


@dataclass(frozen=True)
class Method:
    id: str
    http_method: str
    #: The Flask URL rule, e.g. /taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>.
    rule: str
    params: tuple[Param, ...]
    takes_body: bool


class Discovery:
    """The loaded document; ``render(root_url)`` gives the copy served to clients.
    ``names``: the project and queue names the deployment takes (`backends.limits`)."""

    def __init__(self, document: dict[str, Any], names: NameRules = GOOGLE_NAMES) -> None:
        self.document = document
        self.names = names
        self.global_params = tuple(Param.from_doc(n, d) for n, d in document["parameters"].items())
        self.methods = tuple(self._methods())

    @classmethod
    def load(cls, names: NameRules = GOOGLE_NAMES) -> Discovery:
        text = (importlib.resources.files("api_data") / DOCUMENT).read_text()
        return cls(json.loads(text), names)

    @property
    def api(self) -> str:
        return str(self.document["name"])

    @property
    def version(self) -> str:
        return str(self.document["version"])

    def _methods(self) -> Iterator[Method]:
        base = self.document["basePath"]
        for resource in self.document["resources"].values():
            for doc in resource["methods"].values():
                rule = base + re.sub(r"\{(\w+)\}", r"<\1>", doc["path"])
                params = tuple(Param.from_doc(n, d, self.names) for n, d in doc.get("parameters", {}).items())
                yield Method(doc["id"], doc["httpMethod"], rule, params, "request" in doc)

    @functools.lru_cache(maxsize=32)  # noqa: B019 - one Discovery per app, a few root URLs each
    def render(self, root_url: str) -> str:
        """The document as served, in JSON: its URLs point at ``root_url`` (ends with '/')."""
        document = copy.deepcopy(self.document)
        document["rootUrl"] = root_url
        document["baseUrl"] = root_url + document["servicePath"]
        return json.dumps(document, indent=1)
