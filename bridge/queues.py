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

With a file, an unknown queue is a 404 and a push queue a 400. Without one, every
well-formed queue name exists (created on first use), as the local emulator did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backends.errors import InvalidArgument, NotFound
from backends.limits import QUEUE_NAME

#: The keys App Engine's queue.yaml knows, at each level. The bridge reads a few of them;
#: the others (push queues' rates, targets) are accepted and ignored, and any other key
#: is refused, because a misspelt key (``retry_paramters``) would silently do nothing.
_KNOWN_KEYS: dict[str, frozenset[str]] = {
    "file": frozenset({"queue", "total_storage_limit"}),
    "queue": frozenset(
        {"name", "mode", "rate", "bucket_size", "max_concurrent_requests", "retry_parameters", "target", "acl"}
    ),
    "retry_parameters": frozenset(
        {"task_retry_limit", "task_age_limit", "min_backoff_seconds", "max_backoff_seconds", "max_doublings"}
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


class QueueRegistry:
    """Resolves queue names; ``QueueRegistry()`` accepts every name."""

    def __init__(self, queues: dict[str, QueueConfig] | None = None) -> None:
        self._queues = queues

    @classmethod
    def from_file(cls, path: Path) -> QueueRegistry:
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
            config = _parse_entry(entry, f"{path}: queue entry {number}")
            if config.name in queues:
                raise QueueFileError(f"{path}: queue {config.name!r} is defined twice")
            queues[config.name] = config
        return cls(queues)

    def declared(self) -> tuple[QueueConfig, ...]:
        """The pull queues the file declares; none without a file."""
        return tuple(config for config in (self._queues or {}).values() if config.pull)

    def resolve(self, name: str) -> QueueConfig:
        """The queue's definition; NotFound when undeclared, InvalidArgument for a push queue."""
        if self._queues is None:
            return QueueConfig(name)
        config = self._queues.get(name)
        if config is None:
            raise NotFound(f"Queue not found: {name}", location="taskqueue")
        if not config.pull:
            raise InvalidArgument(f"Queue {name} is a push queue; this API serves pull queues", location="taskqueue")
        return config


def _check_keys(root: yaml.Node | None, path: Path) -> None:
    """Refuse a key queue.yaml does not know, naming its line."""

    def check(node: yaml.Node, level: str, where: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return  # the wrong shape is reported, with its entry, by the parser below
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            if name not in _KNOWN_KEYS[level]:
                known = ", ".join(sorted(_KNOWN_KEYS[level]))
                raise QueueFileError(
                    f"{path} line {key.start_mark.line + 1}: unknown key {name!r}{where} (known: {known})"
                )
            if level == "file" and name == "queue" and isinstance(value, yaml.SequenceNode):
                for entry in value.value:
                    check(entry, "queue", f" in queue {_entry_name(entry)!r}")
            elif level == "queue" and name == "retry_parameters":
                check(value, "retry_parameters", f" in retry_parameters{where.replace(' in ', ' of ', 1)}")

    if root is not None:
        check(root, "file", "")


def _entry_name(entry: yaml.Node) -> str:
    for key, value in entry.value if isinstance(entry, yaml.MappingNode) else ():
        if isinstance(key, yaml.ScalarNode) and key.value == "name" and isinstance(value, yaml.ScalarNode):
            return str(value.value)
    return "?"


def _parse_entry(entry: Any, where: str) -> QueueConfig:
    if not isinstance(entry, dict):
        raise QueueFileError(f"{where}: expected a mapping with a name")
    name = entry.get("name")
    if not QUEUE_NAME.matches(name):
        raise QueueFileError(f"{where}: name {name!r} must be {QUEUE_NAME.described}")
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
    return QueueConfig(name, mode == "pull", limit, tuple(consumers), tuple(producers))
