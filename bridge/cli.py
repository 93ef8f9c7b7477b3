"""The command line: ``python -m bridge serve`` and ``hash-token``, and the tools.

Every option has an environment twin of the same name (``--backend`` and
``BRIDGE_BACKEND``); the option wins. A bad setting stops the command with one line.
The tools' commands (``compat``, ``smoke``, the queue CLI: `TOOLS`) live in `bridge_tools` and are
imported only when called, so serving imports none of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from backends import all_settings
from bridge.access.auth import EMAIL, MIN_TOKEN_LENGTH, hash_token, new_token
from bridge.access.queues import QueueFileError
from bridge.app import create_app
from bridge.server.serving import backend_answer, gunicorn_options, port_problem, startup_line
from bridge.settings import (
    ACL_DEFAULTS,
    AUTH_MODES,
    DEFAULT_LOG_LEVEL,
    DEFAULT_WORKER_CLASS,
    LOG_LEVELS,
    WORKER_CLASSES,
    Settings,
    SettingsError,
)
from bridge.version import __version__

#: The commands of tools outside the server ("module:command"), imported only when called,
#: so that serving imports none of them.
TOOLS: dict[str, str] = {
    "compat": "bridge_tools.compat.command:compat",
    "smoke": "bridge_tools.smoke:smoke_command",
    **{
        name: f"bridge_tools.queue_cli:{name.replace('-', '_')}"
        for name in (
            "queues",
            "tasks",
            "peek",
            "purge",
            "pause",
            "resume",
            "clear-tombstones",
            "dead-letters",
            "delete",
            "release",
            "insert",
        )
    },
}


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn with the bridge's settings; each worker builds its own app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in gunicorn_options(self.settings).items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return create_app(self.settings)


F = TypeVar("F", bound=Callable[..., Any])


def backend_setting_options(command: F) -> F:
    """An option for each setting a backend takes besides its URL (`backends.BACKENDS`),
    for the commands that open a backend (serve, smoke)."""
    for name, (setting, _) in reversed(all_settings().items()):
        command = click.option(
            "--" + name.replace("_", "-"),
            envvar=f"BRIDGE_{name.upper()}",
            type=click.Path(dir_okay=False) if setting.kind == "file" else str,
            help=setting.help,
        )(command)
    return command


def settings_from(**options: Any) -> Settings:
    """Settings from the environment and a command's options; a bad one stops the command."""
    try:
        return Settings.from_env(**options)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


class _Main(click.Group):
    """The bridge's commands, and the tools' commands of `TOOLS`, loaded on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *TOOLS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in TOOLS:
            return super().get_command(ctx, cmd_name)
        module, _, name = TOOLS[cmd_name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="Task Queue Bridge", message="%(prog)s %(version)s")
def main() -> None:
    """Task Queue Bridge: the App Engine Task Queue v1beta2 API over Redis or Cloud Tasks."""


@main.command()
@click.option("--backend", envvar="BRIDGE_BACKEND", help="Backend URL (default memory://).")
@click.option("--host", envvar="BRIDGE_HOST", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", envvar="BRIDGE_PORT", type=int, help="Port to listen on (default 8080).")
@click.option("--grpc-port", envvar="BRIDGE_GRPC_PORT", type=int, help="Also serve Cloud Tasks v2beta2 over gRPC here.")
@click.option("--queues", envvar="BRIDGE_QUEUES", type=click.Path(path_type=Path), help="queue.yaml to serve.")
@click.option("--workers", envvar="BRIDGE_WORKERS", type=int, help="gunicorn worker processes (default 1).")
@click.option("--threads", envvar="BRIDGE_THREADS", type=int, help="Threads per gthread worker (default 8).")
@click.option(
    "--worker-class",
    envvar="BRIDGE_WORKER_CLASS",
    type=click.Choice(WORKER_CLASSES, case_sensitive=False),
    help=f"gunicorn worker model (default {DEFAULT_WORKER_CLASS}).",
)
@click.option(
    "--log-level",
    envvar="BRIDGE_LOG_LEVEL",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help=f"Lowest level logged (default {DEFAULT_LOG_LEVEL}).",
)
@click.option(
    "--head-timeout", envvar="BRIDGE_HEAD_TIMEOUT", type=int, help="Seconds to send a request head (default 10)."
)
@click.option(
    "--max-response-bytes", envvar="BRIDGE_MAX_RESPONSE_BYTES", type=int, help="Lease/list response cap (32 MiB)."
)
@click.option("--projects", envvar="BRIDGE_PROJECTS", help="Comma-separated projects served (default: any).")
@click.option(
    "--strict-leases", envvar="BRIDGE_STRICT_LEASES", type=bool, help="Renew/release only with leaseTimestamp."
)
@click.option("--public-url", envvar="BRIDGE_PUBLIC_URL", help="URL clients use, when behind a proxy.")
@click.option("--max-body-bytes", envvar="BRIDGE_MAX_BODY_BYTES", type=int, help="Larger bodies get 413.")
@click.option(
    "--tombstone-seconds",
    envvar="BRIDGE_TOMBSTONE_SECONDS",
    type=int,
    help="How long a deleted task's name stays reserved (default 604800, a week).",
)
@click.option("--auth", envvar="BRIDGE_AUTH", type=click.Choice(AUTH_MODES), help="How callers prove who they are.")
@click.option("--tokens-file", envvar="BRIDGE_TOKENS_FILE", type=click.Path(path_type=Path), help="Token hashes.")
@click.option("--auth-audience", envvar="BRIDGE_AUTH_AUDIENCE", help="--auth google: the aud ID tokens must carry.")
@click.option("--auth-certs-url", envvar="BRIDGE_AUTH_CERTS_URL", help="--auth google: where the signing keys are.")
@click.option("--acl-default", envvar="BRIDGE_ACL_DEFAULT", type=click.Choice(ACL_DEFAULTS), help="Queues without ACL.")
@click.option("--admins", envvar="BRIDGE_ADMINS", help="Comma-separated emails allowed everything on every queue.")
@click.option("--metrics-auth", envvar="BRIDGE_METRICS_AUTH", type=bool, help="Whether /metrics needs credentials.")
@backend_setting_options
def serve(**options: Any) -> None:
    """Serve the API under gunicorn."""
    settings = settings_from(**options)
    try:
        # Build one app before forking, so that a bad queue file or backend URL stops
        # here with its message instead of in every worker.
        backend = create_app(settings).extensions["bridge"].backend
    except (QueueFileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        answer = backend_answer(backend)
    finally:
        backend.close()
    problem = port_problem(settings.host, settings.port)
    if problem:
        raise click.ClickException(problem)
    click.echo(startup_line(settings, answer), err=True)
    _Gunicorn(settings).run()


@main.command("hash-token")
@click.argument("email")
@click.option("--token-stdin", is_flag=True, help="Hash the token on standard input instead of making a new one.")
def hash_token_command(email: str, token_stdin: bool) -> None:
    """Print the token file line for EMAIL; a new token goes to standard error.

    \b
        python -m bridge hash-token worker@example.com >> tokens.txt
    """
    if not EMAIL.fullmatch(email):
        raise click.ClickException(f"{email!r} is not an email address")
    if token_stdin:
        token = sys.stdin.readline().strip()
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise click.ClickException(f"a token needs at least {MIN_TOKEN_LENGTH} characters and no spaces")
    else:
        token = new_token()
        click.echo(f"token for {email} (give it to the client; it is stored nowhere): {token}", err=True)
    click.echo(f"{hash_token(token)} {email}")
