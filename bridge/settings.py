"""The bridge's settings: one frozen object, read from the environment or the CLI.

Each setting is defined once, as a field of `Settings` made by `setting()`: its name
(from which its option ``--name`` and its variable ``BRIDGE_NAME`` follow), its type
(the field's annotation), its default, its help and its check. The settings a backend
takes besides its URL (``--cloudtasks-endpoint``, …) are declared by its entry in
`backends.BACKENDS` and become definitions of the same kind (`Definition.of_backend`).
`definitions()` lists them all: the parsing of text (environment or command line), the
checks at start-up, the options of ``serve`` and its ``--help`` come from it, and a
test holds README's table to it. Adding a setting is adding one field, as ``dialect``
was::

    dialect: str = setting("google", "How the v1 API answers: …", choices=("google", "legacy-local"))

which gives ``--dialect`` and ``BRIDGE_DIALECT``, their parsing and check, and a line
of ``serve --help``; README's table then needs its row.

Bad or contradictory values fail at start-up with one line that names the setting
(``--port (BRIDGE_PORT): …``) and says how to fix it. A check of one value belongs to
its definition; checks of several values together are the methods of `Settings`.
"""

from __future__ import annotations

import functools
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import backends
from backends import UnknownBackend, all_settings, backend_kind
from backends.base import DEFAULT_TOMBSTONE_SECONDS
from backends.errors import InvalidArgument
from backends.limits import DIALECT_NAMES, NameRules, project_key

#: Largest request body accepted: a 1 MiB payload in base64 plus room for the other fields.
DEFAULT_MAX_BODY_BYTES = 1_500_000
#: Largest lease or list response, in bytes of JSON: App Engine's response limit.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: Seconds a connection may take to send its request head (and a body or a gRPC call may stay silent).
DEFAULT_HEAD_TIMEOUT = 10
#: A backend setting of kind "address".
_ADDRESS = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")
#: What `Settings.auth` may be: how callers prove who they are (see bridge.access.auth).
AUTH_MODES = ("none", "token", "google")
#: What a queue without an ACL in queue.yaml allows: every authenticated caller, or admins only.
ACL_DEFAULTS = ("open", "closed")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

#: How a setting's text becomes its value.
Kind = Literal["text", "choice", "int", "flag", "list", "path"]
#: A check of one value: what is wrong with it, in words, or None.
Check = Callable[[Any], "str | None"]


class SettingsError(ValueError):
    """A setting that cannot work; the message says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class Definition:
    """One setting: everything the environment, the command line, ``--help`` and README say of it."""

    name: str
    help: str
    kind: Kind
    default: object
    #: What an absent value (None, or an empty list) means, for --help and README.
    unset: str = "none"
    #: The only values allowed (kind "choice", matched without regard to case).
    choices: tuple[str, ...] = ()
    check: Check | None = None
    #: The value's placeholder after the option (``--port N``); by default from the kind.
    placeholder: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def envvar(self) -> str:
        return "BRIDGE_" + self.name.upper()

    @property
    def named(self) -> str:
        """How a user sets it, as every message names it."""
        return f"{self.flag} ({self.envvar})"

    @property
    def metavar(self) -> str:
        if self.placeholder is not None:
            return self.placeholder
        if self.kind == "choice":
            return "|".join(self.choices)
        return {"int": "N", "flag": "BOOL", "list": "A,B", "path": "PATH", "text": "TEXT"}[self.kind]

    @property
    def shown_default(self) -> str:
        if self.default is None or self.default == ():
            return self.unset
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)

    def parse(self, raw: str) -> object:
        """The typed value of this setting written as text (environment or CLI)."""
        if self.kind == "int":
            try:
                return int(raw)
            except ValueError:
                raise SettingsError(f"{self.named}: {raw!r} is not a whole number") from None
        if self.kind == "path":
            return Path(raw)
        if self.kind == "choice":
            return raw.lower()
        if self.kind == "list":
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if self.kind == "flag":
            if raw.strip().lower() in _TRUE:
                return True
            if raw.strip().lower() in _FALSE:
                return False
            raise SettingsError(f"{self.named}: {raw!r} is not true or false")
        return raw

    def validate(self, value: object) -> None:
        """SettingsError naming this setting when ``value`` (not None) fails its check."""
        if self.choices and value not in self.choices:
            raise SettingsError(f"{self.named}: {value!r} is not one of {', '.join(self.choices)}")
        problem = self.check(value) if self.check is not None else None
        if problem is not None:
            raise SettingsError(f"{self.named}: {problem}")

    @classmethod
    def of_backend(cls, setting: backends.Setting) -> Definition:
        """A backend's setting (`backends.Setting`) as a definition; its value stays text."""
        check = {"file": _file_of(setting.help), "address": _address, "text": None}[setting.kind]
        placeholder = {"file": "PATH", "address": "HOST:PORT", "text": None}[setting.kind]
        return cls(setting.name, setting.help, "text", None, setting.unset, check=check, placeholder=placeholder)


def setting(
    default: Any,
    help: str,
    *,
    unset: str = "none",
    choices: tuple[str, ...] = (),
    check: Check | None = None,
    placeholder: str | None = None,
) -> Any:
    """A field of `Settings` that is a setting; its kind comes from the field's annotation."""
    spec = {"help": help, "unset": unset, "choices": choices, "check": check, "placeholder": placeholder}
    return field(default=default, metadata={"setting": spec})


# The checks of one value: what is wrong, or None.


def _known_backend(url: str) -> str | None:
    try:
        backend_kind(url)
    except UnknownBackend as exc:
        return str(exc)
    return None


def _tcp_port(port: int) -> str | None:
    return None if 0 < port < 65536 else f"{port} is not a TCP port (1-65535)"


def _positive(number: int) -> str | None:
    return None if number >= 1 else f"must be at least 1, got {number}"


def _is_file(path: Path) -> str | None:
    return None if path.is_file() else f"{path} is not a file"


def _file_of(what: str) -> Check:
    def check(path: str) -> str | None:
        return None if Path(path).is_file() else f"{path} is not a file ({what})"

    return check


def _address(value: str) -> str | None:
    return None if _ADDRESS.fullmatch(value) else f"{value!r} must be host:port"


def _http_url(url: str) -> str | None:
    if urlsplit(url).scheme in ("http", "https"):
        return None
    return f"{url!r} must be an http(s) URL, starting with http:// or https://"


def _application_ids(projects: tuple[str, ...], names: NameRules) -> str | None:
    for project in projects:
        try:
            project_key(project, names)
        except InvalidArgument:
            return f"{project!r} is not an App Engine application id"
    return None


@dataclass(frozen=True)
class Settings:
    backend: str = setting(
        "memory://",
        "Backend URL: memory://, redis://host:6379/0, rediss://…, redis+cluster://host:port, "
        "cloudtasks://projects/P/locations/L, pubsub://projects/P.",
        check=_known_backend,
        placeholder="URL",
    )
    host: str = setting("127.0.0.1", "Address to listen on.", placeholder="ADDRESS")
    port: int = setting(8080, "Port to listen on.", check=_tcp_port)
    #: Where the Cloud Tasks v2beta2 front serves gRPC (on ``host``); None: not served.
    grpc_port: int | None = setting(None, "Also serve Cloud Tasks v2beta2 over gRPC on this port.")
    #: A queue.yaml file; without one, queues are created on first use.
    queues: Path | None = setting(
        None, "A queue.yaml to serve; without one, queues are made on first use.", check=_is_file
    )
    workers: int = setting(1, "gunicorn worker processes; memory:// allows only one.", check=_positive)
    threads: int = setting(8, "Threads per gthread worker.", check=_positive)
    #: gunicorn's worker class: gthread (threads) or sync (one request at a time). gevent
    #: measured slower than gthread here and needs monkey-patching before any import.
    worker_class: str = setting("gthread", "gunicorn worker model.", choices=("gthread", "sync"))
    log_level: str = setting("info", "Lowest level logged (debug also logs probes and scrapes).", choices=LOG_LEVELS)
    #: The URL clients reach the bridge by, when a proxy stands in front of it.
    public_url: str | None = setting(
        None,
        "The URL clients use (Discovery's rootUrl), behind a proxy.",
        unset="the request's host",
        check=_http_url,
        placeholder="URL",
    )
    tombstone_seconds: int = setting(
        DEFAULT_TOMBSTONE_SECONDS, "How long a deleted task's name stays reserved.", check=_positive
    )
    max_body_bytes: int = setting(DEFAULT_MAX_BODY_BYTES, "Larger request bodies get 413, unread.", check=_positive)
    #: Seconds a connection may take to send a whole request head, and a body may go
    #: without sending a byte (gthread workers).
    head_timeout: int = setting(
        DEFAULT_HEAD_TIMEOUT,
        "Seconds a connection may take to send a request head, or a body may stay silent.",
        check=_positive,
    )
    #: Largest lease or list response (JSON bytes); tasks past it are not leased.
    max_response_bytes: int = setting(
        DEFAULT_MAX_RESPONSE_BYTES, "Largest lease or list response (JSON bytes).", check=_positive
    )
    #: The only projects served (application ids, any partition prefix); empty: all.
    projects: tuple[str, ...] = setting(
        (),
        "Comma-separated application ids served; others are 404.",
        unset="any",
        placeholder="IDS",
    )
    #: Whether renewing or releasing a lease needs its leaseTimestamp (queue.yaml may override).
    strict_leases: bool = setting(False, "Renewing or releasing a lease needs its leaseTimestamp.")
    #: none (everyone is anonymous and allowed), token (a token file) or google (ID tokens).
    auth: str = setting("none", "How callers prove who they are.", choices=AUTH_MODES)
    #: token mode: lines of ``sha256:<hex> <email>``, made by ``python -m bridge hash-token``.
    tokens_file: Path | None = setting(
        None, "--auth token: the hashed tokens and who holds them (made by hash-token).", check=_is_file
    )
    #: google mode: the ``aud`` claim every ID token must carry.
    auth_audience: str | None = setting(
        None, "--auth google: the aud claim every ID token must carry.", placeholder="AUD"
    )
    #: google mode: where the signing certificates are published (default: Google's).
    auth_certs_url: str | None = setting(
        None,
        "--auth google: where the signing keys are published.",
        unset="Google's",
        check=_http_url,
        placeholder="URL",
    )
    #: open: a queue without an ACL serves every authenticated caller; closed: admins only.
    acl_default: str = setting("open", "Who may use a queue without an ACL.", choices=ACL_DEFAULTS)
    #: Identities allowed every method on every queue (the TaskQueue acl's adminEmails).
    admins: tuple[str, ...] = setting(
        (), "Comma-separated identities allowed everything on every queue.", placeholder="EMAILS"
    )
    #: Whether /metrics asks for the same credentials as the API (for the metrics code to read).
    metrics_auth: bool = setting(False, "Whether /metrics asks for the API's credentials.")
    #: How the v1 API writes its JSON and which names the bridge takes (bridge.taskqueue.dialect).
    dialect: str = setting(
        "google",
        "How the v1 API answers: as Google did, or as the local stand-ins of 2017 did.",
        choices=tuple(DIALECT_NAMES),
    )
    #: The settings backends take besides their URL, by name (`backends.Setting`), e.g.
    #: {"cloudtasks_endpoint": "localhost:8123"}; only the chosen backend's may be given.
    backend_settings: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        own = own_definitions()
        for name, definition in own.items():
            value = getattr(self, name)
            if value is not None:
                definition.validate(value)
        kind = backend_kind(self.backend)
        if self.grpc_port is not None and not (0 < self.grpc_port < 65536 and self.grpc_port != self.port):
            raise SettingsError(f"{_named('grpc_port')}: {self.grpc_port} must be a TCP port other than --port")
        if kind.single_process and self.workers > 1:
            raise SettingsError(f"{_named('workers')} is {self.workers}: {kind.single_process}")
        # --projects' ids are the dialect's names (legacy-local's may hold '_').
        problem = _application_ids(self.projects, DIALECT_NAMES[self.dialect])
        if problem is not None:
            raise SettingsError(f"{_named('projects')}: {problem}")
        self._check_auth()
        self._check_backend_settings(kind.settings)

    def _check_auth(self) -> None:
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
        if self.auth == "token" and self.tokens_file is None:
            raise SettingsError(f"--auth token needs {_named('tokens_file')}: make lines with `hash-token`")
        if self.auth == "google" and not self.auth_audience:
            raise SettingsError(f"--auth google needs {_named('auth_audience')}: the aud claim of accepted ID tokens")

    def _check_backend_settings(self, taken: tuple[backends.Setting, ...]) -> None:
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
            Definition.of_backend(setting).validate(value)

    def backend_options(self) -> dict[str, object]:
        """The keyword arguments ``open_backend`` takes besides the URL."""
        options: dict[str, object] = {"tombstone_seconds": self.tombstone_seconds}
        for setting in backend_kind(self.backend).settings:
            if setting.name in self.backend_settings:
                options[setting.argument] = self.backend_settings[setting.name]
        return options

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> Settings:
        """Settings from ``BRIDGE_*`` variables; ``overrides`` (not None) win. Text is
        parsed by each setting's definition; other values are taken as they are."""
        values: dict[str, object] = {}
        every = definitions()
        for name, definition in every.items():
            raw = environ.get(definition.envvar)
            if raw is not None and raw != "":
                values[name] = raw
        values.update((key, value) for key, value in overrides.items() if value is not None)
        own = own_definitions()
        typed: dict[str, Any] = {}
        backend_settings: dict[str, str] = {}
        for name, value in values.items():
            if name in own:
                typed[name] = own[name].parse(value) if isinstance(value, str) else value
            elif name in every:
                backend_settings[name] = str(value)
            else:
                raise TypeError(f"{name!r} is not a setting")
        return cls(**typed, backend_settings=backend_settings)


@functools.cache
def own_definitions() -> dict[str, Definition]:
    """The bridge's own settings, in the order of `Settings`' fields."""
    hints = typing.get_type_hints(Settings)
    found: dict[str, Definition] = {}
    for each in fields(Settings):
        spec = each.metadata.get("setting")
        if spec is not None:
            kind = _kind_of(hints[each.name], spec["choices"])
            found[each.name] = Definition(each.name, kind=kind, default=each.default, **spec)
    return found


def definitions() -> dict[str, Definition]:
    """Every setting by name: the bridge's own, then those of the backends (`backends.BACKENDS`)."""
    taken = {name: Definition.of_backend(setting) for name, (setting, _) in all_settings().items()}
    return {**own_definitions(), **taken}


def _kind_of(hint: Any, choices: tuple[str, ...]) -> Kind:
    """How a field's text is read, from its annotation (``int | None``: an int that may be absent)."""
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        return "list"
    kinds: dict[Any, Kind] = {bool: "flag", int: "int", Path: "path", str: "choice" if choices else "text"}
    return kinds[hint]


def _named(name: str) -> str:
    """How a user sets setting ``name``: its option and its environment variable."""
    return definitions()[name].named
