"""The registry of scenarios and the helpers several of them share."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backends.limits import US, app_id
from bridge_tools.compat.rules import AsFound, AtLeast, Rule
from bridge_tools.compat.session import Session

ScenarioFunction = Callable[[Session], None]
DAY_US = 24 * 3600 * US


@dataclass(frozen=True)
class Scenario:
    name: str
    #: The first line of the function's docstring.
    description: str
    run: ScenarioFunction


#: name -> scenario, in the order they were defined.
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register the decorated function as the scenario ``name``."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if name in SCENARIOS:
            raise ValueError(f"two scenarios are named {name!r}")
        description = (inspect.getdoc(function) or name).splitlines()[0]
        SCENARIOS[name] = Scenario(name, description, function)
        return function

    return register


def now_us() -> int:
    return time.time_ns() // 1000


def bare_project(project: str) -> str:
    """The application id without its partition prefix (``s~app`` -> ``app``)."""
    return app_id(project) or project


def count(s: Session, n: int) -> Any:
    """A leased-last-minute/hour count: exact on a fresh queue; on a pinned queue earlier
    runs may have leased from it too."""
    return AtLeast(n) if s.pinned else str(n)


def queue_json(s: Session, *, stats: dict[str, Any] | None = None, project: str | None = None) -> dict[str, Any]:
    """A TaskQueue of a queue the run made up (no ACL, no maxLeases); on a pinned queue the
    settings are whatever the endpoint says, compared exactly between two endpoints."""
    acl: dict[str, Any] | Rule = {"adminEmails": [], "consumerEmails": [], "producerEmails": []}
    resource: dict[str, Any] = {"kind": "taskqueues#taskqueue", "id": s.queue_name(project), "acl": acl}
    if s.pinned:
        resource.update(acl=AsFound("acl"), maxLeases=AsFound("maxLeases"))
    if stats is not None:
        resource["stats"] = stats
    return resource


def with_uri(request: Any, path_suffix: str | None = None, *, drop: str | None = None) -> Any:
    """``request`` sent somewhere a client would not send it: its path extended, or one
    query parameter left out (the client refuses to build such calls itself)."""
    path, _, query = request.uri.partition("?")
    if path_suffix:
        path += path_suffix
    if drop:
        query = "&".join(part for part in query.split("&") if not part.startswith(f"{drop}="))
    request.uri = f"{path}?{query}" if query else path
    return request
