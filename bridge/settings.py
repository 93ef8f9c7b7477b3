"""The bridge's settings: one frozen object, read from the environment or the CLI.

Every setting has an environment variable and a CLI option of the same name
(``BRIDGE_BACKEND`` / ``--backend``). Bad or contradictory values fail at start-up with
one line that says how to fix them.
"""

from __future__ import annotations

import os
import re
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
#: Largest request body accepted: a 1 MiB payload in base64 plus room for the other fields.
DEFAULT_MAX_BODY_BYTES = 1_500_000
_ENDPOINT = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$")


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
    #: The URL clients reach the bridge by, when a proxy stands in front of it.
    public_url: str | None = None
    tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: A service-account key file for Cloud Tasks; without one, Application Default Credentials.
    cloudtasks_credentials: Path | None = None
    #: host:port of a plain local gRPC Cloud Tasks server (an emulator), reached without credentials.
    cloudtasks_endpoint: str | None = None

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
        if self.queues is not None and not self.queues.is_file():
            raise SettingsError(f"{_named('queues')}: {self.queues} is not a file")
        if self.public_url is not None and urlsplit(self.public_url).scheme not in ("http", "https"):
            raise SettingsError(f"{_named('public_url')}: {self.public_url!r} must start with http:// or https://")
        self._check_cloudtasks()

    def _check_cloudtasks(self) -> None:
        given = [name for name in ("cloudtasks_credentials", "cloudtasks_endpoint") if getattr(self, name) is not None]
        if given and urlsplit(self.backend).scheme != "cloudtasks":
            raise SettingsError(f"{_named(given[0])} only applies to a cloudtasks:// backend, not {self.backend!r}")
        if len(given) == 2:
            raise SettingsError(
                f"{_named('cloudtasks_endpoint')} is a local server reached without credentials; "
                f"drop it or {_named('cloudtasks_credentials')}"
            )
        if self.cloudtasks_credentials is not None and not self.cloudtasks_credentials.is_file():
            raise SettingsError(
                f"{_named('cloudtasks_credentials')}: {self.cloudtasks_credentials} is not a file "
                "(a service-account key in JSON)"
            )
        if self.cloudtasks_endpoint is not None and not _ENDPOINT.match(self.cloudtasks_endpoint):
            raise SettingsError(f"{_named('cloudtasks_endpoint')}: {self.cloudtasks_endpoint!r} must be host:port")

    def backend_options(self) -> dict[str, object]:
        """The keyword arguments ``open_backend`` takes besides the URL."""
        options: dict[str, object] = {"tombstone_seconds": self.tombstone_seconds}
        if self.cloudtasks_credentials is not None:
            options["credentials"] = str(self.cloudtasks_credentials)
        if self.cloudtasks_endpoint is not None:
            options["endpoint"] = self.cloudtasks_endpoint
        return options

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
            elif field.name in ("queues", "cloudtasks_credentials"):
                values[field.name] = Path(raw)
            else:
                values[field.name] = raw
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]
