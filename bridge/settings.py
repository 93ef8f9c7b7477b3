"""The bridge's settings: one frozen object, read from the environment or the CLI.

Every setting has an environment variable and a CLI option of the same name
(``BRIDGE_BACKEND`` / ``--backend``). Bad or contradictory values fail at start-up with
one line that says how to fix them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from backends import UnknownBackend, backend_class
from backends.base import DEFAULT_TOMBSTONE_SECONDS

DEFAULT_BACKEND = "memory://"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 8
#: gunicorn's worker model; gunicorn.conf.py records the measurement behind the choice.
DEFAULT_WORKER_CLASS = "gthread"
#: gevent measured slower than gthread here and needs monkey-patching before any import.
WORKER_CLASSES = ("gthread", "sync")
DEFAULT_LOG_LEVEL = "info"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: Largest request body accepted: a 1 MiB payload in base64 plus room for the other fields.
DEFAULT_MAX_BODY_BYTES = 1_500_000


class SettingsError(ValueError):
    """A setting that cannot work; the message says which and how to fix it."""


def _named(field: str) -> str:
    """How a user sets ``field``: its CLI option and its environment variable."""
    return f"--{field.replace('_', '-')} (BRIDGE_{field.upper()})"


@dataclass(frozen=True)
class Settings:
    backend: str = DEFAULT_BACKEND
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: A queue.yaml file; without one, queues are created on first use.
    queues: Path | None = None
    workers: int = 1
    threads: int = DEFAULT_THREADS
    #: gunicorn's worker class: gthread (threads) or sync (one request at a time).
    worker_class: str = DEFAULT_WORKER_CLASS
    log_level: str = DEFAULT_LOG_LEVEL
    #: The URL clients reach the bridge by, when a proxy stands in front of it.
    public_url: str | None = None
    tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        try:
            backend = backend_class(self.backend)
        except UnknownBackend as exc:
            raise SettingsError(f"{_named('backend')}: {exc}") from None
        if not 0 < self.port < 65536:
            raise SettingsError(f"{_named('port')}: {self.port} is not a TCP port (1-65535)")
        for name in ("workers", "threads", "tombstone_seconds", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{_named(name)}: must be at least 1, got {getattr(self, name)}")
        single = getattr(backend, "SINGLE_PROCESS", None)
        if single and self.workers > 1:
            raise SettingsError(f"{_named('workers')} is {self.workers}: {single}")
        if self.worker_class not in WORKER_CLASSES:
            known = ", ".join(WORKER_CLASSES)
            raise SettingsError(f"{_named('worker_class')}: {self.worker_class!r} is not one of {known}")
        if self.log_level not in LOG_LEVELS:
            known = ", ".join(LOG_LEVELS)
            raise SettingsError(f"{_named('log_level')}: {self.log_level!r} is not one of {known}")
        if self.queues is not None and not self.queues.is_file():
            raise SettingsError(f"{_named('queues')}: {self.queues} is not a file")
        if self.public_url is not None and urlsplit(self.public_url).scheme not in ("http", "https"):
            raise SettingsError(f"{_named('public_url')}: {self.public_url!r} must start with http:// or https://")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> Settings:
        """Settings from ``BRIDGE_*`` variables; ``overrides`` (not None) win."""
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = environ.get(f"BRIDGE_{field.name.upper()}")
            if raw is None or raw == "":
                continue
            if field.name in ("port", "workers", "threads", "tombstone_seconds", "max_body_bytes"):
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise SettingsError(f"{_named(field.name)}: {raw!r} is not a whole number") from None
            elif field.name == "queues":
                values[field.name] = Path(raw)
            elif field.name in ("worker_class", "log_level"):
                values[field.name] = raw.lower()
            else:
                values[field.name] = raw
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]
