"""Queue definitions from an App Engine queue.yaml file.

The bridge reads the parts that matter to pull queues::

    queue:
    - name: render
      mode: pull
      acl:
      - user_email: worker@example.com     # a consumer: lease, renew, list, get, delete
      - writer_email: frontend@example.com # a producer: insert
      retry_parameters:
        task_retry_limit: 5                # maxLeases
      strict_leases: true                  # renew/release only with the leaseTimestamp token

and, at the top, the bridge's own optional ``application: my-app`` (a queue.yaml
belongs to one App Engine application), which limits the queues to that project, as
``--projects`` does.

With a file, an unknown queue is a 404 and a push queue a 400. Without one, every
well-formed queue name exists (created on first use), as the local emulator did. What
is well formed is the deployment's `NameRules` (Google's, or with '_' too: ``--dialect``).
A queue's ``strict_leases`` overrides ``--strict-leases``.

Of ``retry_parameters`` a pull queue has ``task_retry_limit`` alone: App Engine's
queue.yaml reference marks the others "push queues only". ``task_age_limit`` on a pull
queue is refused, naming its line: App Engine's own stub applies it there (retrying
until both limits are reached, and a lease never ages the task), its documentation does
not, and a setting read two ways is one the bridge cannot honour. The backoff settings
are accepted and, as by App Engine, not used for leases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backends.errors import InvalidArgument, NotFound
from backends.limits import GOOGLE_NAMES, NameRules, project_key

#: The keys App Engine's queue.yaml knows, at each level. The bridge reads a few of them;
#: the others (push queues' rates, targets) are accepted and ignored, and any other key
#: is refused, because a misspelt key (``retry_paramters``) would silently do nothing.
_KNOWN_KEYS: dict[str, frozenset[str]] = {
    "file": frozenset({"application", "queue", "total_storage_limit"}),
    "queue": frozenset(
        {
            "name",
            "mode",
            "rate",
            "bucket_size",
            "max_concurrent_requests",
            "retry_parameters",
            "target",
            "acl",
            "strict_leases",
        }
    ),
    "retry_parameters": frozenset(
        {"task_retry_limit", "task_age_limit", "min_backoff_seconds", "max_backoff_seconds", "max_doublings"}
    ),
}


#: retry_parameters that App Engine applies to push queues only and that a pull queue
#: may not carry, with the reason given.
_PUSH_ONLY_RETRY = {
    "task_age_limit": (
        "App Engine applies task_age_limit to push queues only (its queue.yaml reference); a pull "
        "queue drops a task after task_retry_limit leases alone, so remove task_age_limit"
    ),
}


class QueueFileError(ValueError):
    """queue.yaml cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    pull: bool = True
    max_leases: int | None = None
    consumers: tuple[str, ...] = ()
    producers: tuple[str, ...] = ()
    #: Whether renewing or releasing a lease needs its leaseTimestamp token.
    strict_leases: bool = False


class QueueRegistry:
    """Resolves projects and queue names; ``QueueRegistry()`` accepts every name.

    ``projects`` (application ids without partition prefix) limits the projects served;
    empty serves every project. ``strict_leases`` is the default of queues that do not
    choose. ``names``: the project and queue names the deployment takes; the gate's
    admission resolves every front's projects with them (`bridge.gate.access`).
    """

    def __init__(
        self,
        queues: dict[str, QueueConfig] | None = None,
        *,
        projects: Iterable[str] = (),
        strict_leases: bool = False,
        names: NameRules = GOOGLE_NAMES,
    ) -> None:
        self._queues = queues
        self.names = names
        self.projects = frozenset(project_key(project, names) for project in projects)
        self.strict_leases = strict_leases

    def check_project(self, key: str, project: str) -> None:
        """NotFound unless the project (``key``: without its partition prefix) is served."""
        if self.projects and key not in self.projects:
            raise NotFound(f"Project not found: {project}", location="project")

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        projects: Iterable[str] = (),
        strict_leases: bool = False,
        names: NameRules = GOOGLE_NAMES,
    ) -> QueueRegistry:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise QueueFileError(f"{path}: cannot be read: {exc.strerror}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise QueueFileError(f"{path} line {line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
        try:
            _check_keys(yaml.compose(text), path)
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise QueueFileError(f"{path}: cannot be read as YAML: {exc}".replace("\n", " ")) from None
        entries = (document or {}).get("queue") if isinstance(document, dict | None) else None
        if not isinstance(entries, list):
            raise QueueFileError(f"{path}: expected a top-level 'queue:' list")
        queues: dict[str, QueueConfig] = {}
        for number, entry in enumerate(entries, 1):
            config = _parse_entry(entry, f"{path}: queue entry {number}", strict_leases, names)
            if config.name in queues:
                raise QueueFileError(f"{path}: queue {config.name!r} is defined twice")
            queues[config.name] = config
        application = document.get("application")
        if application is not None:
            key = names.app_id(application) if isinstance(application, str) else None
            if key is None:
                raise QueueFileError(f"{path}: application {application!r} is not an App Engine application id")
            if projects and {project_key(project, names) for project in projects} != {key}:
                raise QueueFileError(f"{path}: application {application!r} contradicts --projects; keep one of them")
            projects = (key,)
        return cls(queues, projects=projects, strict_leases=strict_leases, names=names)

    def declared(self) -> tuple[QueueConfig, ...]:
        """The pull queues the file declares; none without a file."""
        return tuple(config for config in (self._queues or {}).values() if config.pull)

    def resolve(self, name: str) -> QueueConfig:
        """The queue's definition; NotFound when undeclared, InvalidArgument for a push queue."""
        if self._queues is None:
            return QueueConfig(name, strict_leases=self.strict_leases)
        config = self._queues.get(name)
        if config is None:
            raise NotFound(f"Queue not found: {name}", location="taskqueue")
        if not config.pull:
            raise InvalidArgument(f"Queue {name} is a push queue; this API serves pull queues", location="taskqueue")
        return config


def _check_keys(root: yaml.Node | None, path: Path) -> None:
    """Refuse a key queue.yaml does not know, or one a pull queue may not have, naming its line."""

    def check(node: yaml.Node, level: str, where: str, pull: bool = False) -> None:
        if not isinstance(node, yaml.MappingNode):
            return  # the wrong shape is reported, with its entry, by the parser below
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            line = key.start_mark.line + 1
            if name not in _KNOWN_KEYS[level]:
                known = ", ".join(sorted(_KNOWN_KEYS[level]))
                raise QueueFileError(f"{path} line {line}: unknown key {name!r}{where} (known: {known})")
            if level == "retry_parameters" and pull and name in _PUSH_ONLY_RETRY:
                raise QueueFileError(f"{path} line {line}: {name}{where}: {_PUSH_ONLY_RETRY[name]}")
            if level == "file" and name == "queue" and isinstance(value, yaml.SequenceNode):
                for entry in value.value:
                    pull_entry = _entry_value(entry, "mode") == "pull"
                    check(entry, "queue", f" in queue {_entry_value(entry, 'name')!r}", pull_entry)
            elif level == "queue" and name == "retry_parameters":
                check(value, "retry_parameters", f" in retry_parameters{where.replace(' in ', ' of ', 1)}", pull)

    if root is not None:
        check(root, "file", "")


def _entry_value(entry: yaml.Node, name: str) -> str:
    """The text of an entry's key ``name``, "?" when it has none."""
    for key, value in entry.value if isinstance(entry, yaml.MappingNode) else ():
        if isinstance(key, yaml.ScalarNode) and key.value == name and isinstance(value, yaml.ScalarNode):
            return str(value.value)
    return "?"


def _parse_entry(entry: Any, where: str, strict_default: bool, names: NameRules) -> QueueConfig:
    if not isinstance(entry, dict):
        raise QueueFileError(f"{where}: expected a mapping with a name")
    name = entry.get("name")
    if not names.queue.matches(name):
        raise QueueFileError(f"{where}: name {name!r} must be {names.queue.described}")
    mode = entry.get("mode", "push")
    if mode not in ("push", "pull"):
        raise QueueFileError(f"{where} ({name}): mode must be push or pull, not {mode!r}")
    retry = entry.get("retry_parameters") or {}
    limit = retry.get("task_retry_limit") if isinstance(retry, dict) else None
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise QueueFileError(f"{where} ({name}): task_retry_limit must be a whole number of at least 1")
    consumers, producers = [], []
    for rule in entry.get("acl") or []:
        if not isinstance(rule, dict) or len(rule) != 1:
            raise QueueFileError(f"{where} ({name}): each acl entry is one user_email or writer_email")
        ((kind, email),) = rule.items()
        if kind == "user_email":
            consumers.append(str(email))
        elif kind == "writer_email":
            producers.append(str(email))
        else:
            raise QueueFileError(f"{where} ({name}): unknown acl entry {kind!r}")
    strict = entry.get("strict_leases", strict_default)
    if not isinstance(strict, bool):
        raise QueueFileError(f"{where} ({name}): strict_leases must be true or false")
    return QueueConfig(name, mode == "pull", limit, tuple(consumers), tuple(producers), strict)
