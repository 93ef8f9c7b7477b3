"""Storage backends: the contract (`backends.base`), its implementations, chosen by the
scheme of a URL, and the rules and limits every layer shares (`backends.limits`).

    memory://                              fakeredis inside this process (the default)
    redis://[:password@]host[:port][/db]   a Redis server
    rediss://…                             the same over TLS
    redis+cluster://host:port              a Redis Cluster (any one node)
    cloudtasks://projects/P/locations/L    Google Cloud Tasks v2beta2 pull queues
    pubsub://projects/P                    Google Cloud Pub/Sub (what it cannot do is refused)

Each scheme's entry in `BACKENDS` says what the server must know before it opens the
backend: the class (imported only when its scheme is chosen, so a laptop that never
talks to Cloud Tasks never imports the Google client), the settings it takes besides
its URL, and whether it serves one process only. The server's settings and command
line are built from these entries; the options in a URL's query string are the
class's own business (its module docstring lists them, `url_options` reads them).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from backends.base import Backend


@dataclass(frozen=True, slots=True)
class Setting:
    """A setting a backend takes besides its URL.

    The server reads it as ``BRIDGE_<NAME>`` or ``--<name>`` (``cloudtasks_endpoint``:
    ``BRIDGE_CLOUDTASKS_ENDPOINT``, ``--cloudtasks-endpoint``), checks it at start-up
    by its kind, lists it with its own settings (``serve --help``, README's table: it is
    one more `bridge.settings.Definition`), and passes it to ``from_url`` as the keyword
    ``argument``.
    """

    name: str
    argument: str
    help: str
    #: What the value is: a file that must exist, a host:port, or any text.
    kind: Literal["file", "address", "text"] = "text"
    #: A setting that cannot be given together with this one.
    excludes: str | None = None
    #: What the backend does when the setting is not given (``--help`` and README's default).
    unset: str = "none"


@dataclass(frozen=True, slots=True)
class Kind:
    """One scheme's backend, as the server needs to know it before opening one."""

    #: "module:Class"; the class has ``from_url(url, *, tombstone_seconds, **settings)``.
    target: str
    settings: tuple[Setting, ...] = ()
    #: Why several server processes cannot share the backend; None when they can.
    single_process: str | None = None

    def opener(self) -> Opener:
        module_name, _, class_name = self.target.partition(":")
        opener: Opener = getattr(importlib.import_module(module_name), class_name)
        return opener


class Opener(Protocol):
    """How a backend is built. Construction is not part of the `Backend` contract, so
    that wrappers of a backend (metrics, tests) need not pretend to open one."""

    def from_url(self, url: str, **options: Any) -> Backend: ...


_REDIS = Kind("backends.redis.backend:RedisBackend")

#: scheme -> what serves it.
BACKENDS: dict[str, Kind] = {
    "memory": Kind(
        "backends.redis.memory:MemoryBackend",
        single_process="memory:// keeps tasks inside one process; use one worker, or a redis:// backend for more",
    ),
    "redis": _REDIS,
    "rediss": _REDIS,
    "redis+cluster": _REDIS,
    "cloudtasks": Kind(
        "backends.cloudtasks.backend:CloudTasksBackend",
        settings=(
            Setting(
                "cloudtasks_credentials",
                "credentials",
                "A service-account key file (JSON) for Cloud Tasks.",
                kind="file",
                unset="Application Default Credentials",
            ),
            Setting(
                "cloudtasks_endpoint",
                "endpoint",
                "host:port of a local Cloud Tasks gRPC server (an emulator), reached without credentials.",
                kind="address",
                excludes="cloudtasks_credentials",
                unset="Google's service",
            ),
        ),
    ),
    "pubsub": Kind(
        "backends.pubsub.backend:PubSubBackend",
        settings=(
            Setting(
                "pubsub_credentials",
                "credentials",
                "A service-account key file (JSON) for Pub/Sub.",
                kind="file",
                unset="Application Default Credentials",
            ),
        ),
    ),
}


class UnknownBackend(ValueError):
    pass


def backend_kind(url: str) -> Kind:
    """The entry serving ``url``; UnknownBackend names the schemes there are."""
    scheme = urlsplit(url).scheme
    try:
        return BACKENDS[scheme]
    except KeyError:
        known = ", ".join(f"{name}://" for name in BACKENDS)
        raise UnknownBackend(f"unknown backend {url!r}: the URL must start with one of {known}") from None


def all_settings() -> dict[str, tuple[Setting, list[str]]]:
    """Every backend setting by name, with the schemes that take it."""
    found: dict[str, tuple[Setting, list[str]]] = {}
    for scheme, kind in BACKENDS.items():
        for setting in kind.settings:
            found.setdefault(setting.name, (setting, []))[1].append(scheme)
    return found


def url_options(url: str, known: tuple[str, ...]) -> dict[str, str]:
    """The options in ``url``'s query string (the last value of each); ValueError names
    any the backend does not know, so that a typo is not silently ignored."""
    options = {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
    unknown = set(options) - set(known)
    if unknown:
        expected = ", ".join(known) if known else "none"
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} in {url!r} (options: {expected})")
    return options


def open_backend(url: str, **options: Any) -> Backend:
    """Build the backend for ``url``; options are ``tombstone_seconds`` and the
    arguments of the kind's settings."""
    return backend_kind(url).opener().from_url(url, **options)
