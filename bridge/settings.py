"""The bridge's settings: one frozen object, read from the environment or the CLI.

Every setting has an environment variable and a CLI option of the same name
(``BRIDGE_BACKEND`` / ``--backend``). Bad or contradictory values fail at start-up with
one line that says how to fix them. The settings a backend takes besides its URL
(``--cloudtasks-endpoint``, …) are declared by its entry in `backends.BACKENDS`, and
read and checked here like the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from backends import Setting, UnknownBackend, all_settings, backend_kind
from backends.base import DEFAULT_TOMBSTONE_SECONDS
from backends.errors import InvalidArgument
from bridge.taskqueue.wire import project_key

DEFAULT_BACKEND = "memory://"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 8
#: gunicorn's worker model; bench/README.md records the measurement behind the choice.
DEFAULT_WORKER_CLASS = "gthread"
#: gevent measured slower than gthread here and needs monkey-patching before any import.
WORKER_CLASSES = ("gthread", "sync")
DEFAULT_LOG_LEVEL = "info"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: Largest request body accepted: a 1 MiB payload in base64 plus room for the other fields.
DEFAULT_MAX_BODY_BYTES = 1_500_000
#: Largest lease or list response, in bytes of JSON: App Engine's response limit.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: Seconds a connection may take to send its request head before it is closed.
DEFAULT_HEAD_TIMEOUT = 10
#: A backend setting of kind "address".
_ADDRESS = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")
#: How callers prove who they are (see bridge.access.auth).
AUTH_MODES = ("none", "token", "google")
#: What a queue without an ACL in queue.yaml allows: every authenticated caller, or admins only.
ACL_DEFAULTS = ("open", "closed")

_INTEGERS = (
    "port",
    "grpc_port",
    "workers",
    "threads",
    "tombstone_seconds",
    "max_body_bytes",
    "head_timeout",
    "max_response_bytes",
)
_PATHS = ("queues", "tokens_file")
_LISTS = ("admins", "projects")
_FLAGS = ("metrics_auth", "strict_leases")
_LOWERCASE = ("worker_class", "log_level")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


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
    #: Where the Cloud Tasks v2beta2 front serves gRPC (on ``host``); None: not served.
    grpc_port: int | None = None
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
    #: Seconds a connection may take to send a whole request head, and a body may go
    #: without sending a byte (gthread workers).
    head_timeout: int = DEFAULT_HEAD_TIMEOUT
    #: Largest lease or list response (JSON bytes); tasks past it are not leased.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    #: The only projects served (application ids, any partition prefix); empty: all.
    projects: tuple[str, ...] = ()
    #: Whether renewing or releasing a lease needs its leaseTimestamp (queue.yaml may override).
    strict_leases: bool = False
    #: none (everyone is anonymous and allowed), token (a token file) or google (ID tokens).
    auth: str = "none"
    #: token mode: lines of ``sha256:<hex> <email>``, made by ``python -m bridge hash-token``.
    tokens_file: Path | None = None
    #: google mode: the ``aud`` claim every ID token must carry.
    auth_audience: str | None = None
    #: google mode: where the signing certificates are published (default: Google's).
    auth_certs_url: str | None = None
    #: open: a queue without an ACL serves every authenticated caller; closed: admins only.
    acl_default: str = "open"
    #: Identities allowed every method on every queue (the TaskQueue acl's adminEmails).
    admins: tuple[str, ...] = ()
    #: Whether /metrics asks for the same credentials as the API (for the metrics code to read).
    metrics_auth: bool = False
    #: The settings backends take besides their URL, by name (`backends.Setting`), e.g.
    #: {"cloudtasks_endpoint": "localhost:8123"}; only the chosen backend's may be given.
    backend_settings: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            kind = backend_kind(self.backend)
        except UnknownBackend as exc:
            raise SettingsError(f"{_named('backend')}: {exc}") from None
        if not 0 < self.port < 65536:
            raise SettingsError(f"{_named('port')}: {self.port} is not a TCP port (1-65535)")
        if self.grpc_port is not None and not (0 < self.grpc_port < 65536 and self.grpc_port != self.port):
            raise SettingsError(f"{_named('grpc_port')}: {self.grpc_port} must be a TCP port other than --port")
        for name in ("workers", "threads", "tombstone_seconds", "max_body_bytes", "head_timeout", "max_response_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{_named(name)}: must be at least 1, got {getattr(self, name)}")
        if kind.single_process and self.workers > 1:
            raise SettingsError(f"{_named('workers')} is {self.workers}: {kind.single_process}")
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
        for project in self.projects:
            try:
                project_key(project)
            except InvalidArgument:
                raise SettingsError(f"{_named('projects')}: {project!r} is not an App Engine application id") from None
        self._check_auth()
        self._check_backend_settings(kind.settings)

    def _check_auth(self) -> None:
        if self.auth not in AUTH_MODES:
            raise SettingsError(f"{_named('auth')}: {self.auth!r} is not one of {', '.join(AUTH_MODES)}")
        if self.acl_default not in ACL_DEFAULTS:
            raise SettingsError(f"{_named('acl_default')}: {self.acl_default!r} is not one of open, closed")
        # A setting that the chosen mode ignores is a mistake waiting to be believed in.
        needs = {"tokens_file": "token", "auth_audience": "google", "auth_certs_url": "google"}
        for name, mode in needs.items():
            if getattr(self, name) is not None and self.auth != mode:
                raise SettingsError(f"{_named(name)} is only used with --auth {mode}, but --auth is {self.auth}")
        if self.auth == "none":
            gated = [name for name in ("admins", "metrics_auth") if getattr(self, name)]
            gated += ["acl_default"] if self.acl_default == "closed" else []
            if gated:
                why = "with --auth none everyone is anonymous and allowed"
                raise SettingsError(f"{_named(gated[0])} needs --auth token or google: {why}")
        if self.auth == "token":
            if self.tokens_file is None:
                raise SettingsError(f"--auth token needs {_named('tokens_file')}: make lines with `hash-token`")
            if not self.tokens_file.is_file():
                raise SettingsError(f"{_named('tokens_file')}: {self.tokens_file} is not a file")
        if self.auth == "google" and not self.auth_audience:
            raise SettingsError(f"--auth google needs {_named('auth_audience')}: the aud claim of accepted ID tokens")
        if self.auth_certs_url is not None and urlsplit(self.auth_certs_url).scheme not in ("http", "https"):
            raise SettingsError(f"{_named('auth_certs_url')}: {self.auth_certs_url!r} must be an http(s) URL")

    def _check_backend_settings(self, taken: tuple[Setting, ...]) -> None:
        known = all_settings()
        for name, value in self.backend_settings.items():
            if name not in known:
                raise SettingsError(f"unknown backend setting {name!r}")
            setting, schemes = known[name]
            if setting not in taken:
                backends = " or ".join(f"{scheme}://" for scheme in schemes)
                raise SettingsError(f"{_named(name)} only applies to a {backends} backend, not {self.backend!r}")
            if setting.excludes is not None and setting.excludes in self.backend_settings:
                both = f"{_named(name)} or {_named(setting.excludes)}"
                raise SettingsError(f"give {both}, not both: {name} is {setting.help}")
            if setting.kind == "file" and not Path(value).is_file():
                raise SettingsError(f"{_named(name)}: {value} is not a file ({setting.help})")
            if setting.kind == "address" and not _ADDRESS.fullmatch(value):
                raise SettingsError(f"{_named(name)}: {value!r} must be host:port")

    def backend_options(self) -> dict[str, object]:
        """The keyword arguments ``open_backend`` takes besides the URL."""
        options: dict[str, object] = {"tombstone_seconds": self.tombstone_seconds}
        for setting in backend_kind(self.backend).settings:
            if setting.name in self.backend_settings:
                options[setting.argument] = self.backend_settings[setting.name]
        return options

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> Settings:
        """Settings from ``BRIDGE_*`` variables; ``overrides`` (not None) win."""
        values: dict[str, object] = {}
        backend_settings: dict[str, str] = {}
        for name in [f.name for f in fields(cls) if f.name != "backend_settings"] + list(all_settings()):
            raw = environ.get(f"BRIDGE_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = raw
        values.update((key, value) for key, value in overrides.items() if value is not None)
        for name in all_settings():
            if name in values:
                backend_settings[name] = str(values.pop(name))
        typed = {key: _parse(key, value) if isinstance(value, str) else value for key, value in values.items()}
        return cls(**typed, backend_settings=backend_settings)  # type: ignore[arg-type]


def _parse(name: str, raw: str) -> object:
    """The typed value of setting ``name`` written as text (environment or CLI)."""
    if name in _INTEGERS:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{_named(name)}: {raw!r} is not a whole number") from None
    if name in _PATHS:
        return Path(raw)
    if name in _LOWERCASE:
        return raw.lower()
    if name in _LISTS:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if name in _FLAGS:
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise SettingsError(f"{_named(name)}: {raw!r} is not true or false")
    return raw
