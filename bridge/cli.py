"""The command line: ``python -m bridge serve``, ``smoke`` and ``compat``.

Every option has an environment twin of the same name (``--backend`` and
``BRIDGE_BACKEND``); the option wins. A bad setting stops the command with one line.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from backends import open_backend
from bridge import __version__
from bridge.app import create_app
from bridge.auth import EMAIL, MIN_TOKEN_LENGTH, hash_token, new_token
from bridge.compat.options import (
    DEFAULT_CLOCK_TOLERANCE,
    DEFAULT_PROJECT,
    DEFAULT_QUEUE_PREFIX,
    DEFAULT_TIMEOUT,
    Options,
)
from bridge.queues import QueueFileError
from bridge.serving import backend_answer, gunicorn_options, port_problem, startup_line
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

#: Where the commands that call a bridge (compat, smoke) find a token when --token is not given.
TOKEN_ENV = "BRIDGE_CLIENT_TOKEN"

#: ``--token``, for commands that call a bridge run with --auth token or google (see bridge.client).
token_option = click.option(
    "--token",
    envvar=TOKEN_ENV,
    default=None,
    help=f"Bearer token to send, for a bridge run with --auth token or google (or {TOKEN_ENV}).",
)


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


def _cloudtasks_options(command: F) -> F:
    """The options naming how to reach Cloud Tasks, shared by serve and smoke."""
    command = click.option(
        "--cloudtasks-endpoint",
        envvar="BRIDGE_CLOUDTASKS_ENDPOINT",
        help="host:port of a local Cloud Tasks gRPC server (an emulator), reached without credentials.",
    )(command)
    return click.option(
        "--cloudtasks-credentials",
        envvar="BRIDGE_CLOUDTASKS_CREDENTIALS",
        type=click.Path(path_type=Path),
        help="Service-account key file for Cloud Tasks (default: Application Default Credentials).",
    )(command)


def _settings(**options: Any) -> Settings:
    try:
        return Settings.from_env(**options)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


class _Tools(click.Group):
    """A group whose client tools (`bridge_tools`) are imported only when one is invoked,
    so that serving imports none of them."""

    #: command name -> "module:attribute" of its click command
    TOOLS = {name: f"bridge_tools.queue_cli:{name}" for name in ("queues", "tasks", "peek", "purge", "insert")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.TOOLS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.TOOLS:
            module_name, _, attribute = self.TOOLS[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module_name), attribute)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Tools)
@click.version_option(__version__, prog_name="Task Queue Bridge", message="%(prog)s %(version)s")
def main() -> None:
    """Task Queue Bridge: the App Engine Task Queue v1beta2 API over Redis or Cloud Tasks."""


@main.command()
@click.option("--backend", envvar="BRIDGE_BACKEND", help="Backend URL (default memory://).")
@click.option("--host", envvar="BRIDGE_HOST", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", envvar="BRIDGE_PORT", type=int, help="Port to listen on (default 8080).")
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
@_cloudtasks_options
def serve(**options: Any) -> None:
    """Serve the API under gunicorn."""
    settings = _settings(**options)
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
    if not EMAIL.match(email):
        raise click.ClickException(f"{email!r} is not an email address")
    if token_stdin:
        token = sys.stdin.readline().strip()
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise click.ClickException(f"a token needs at least {MIN_TOKEN_LENGTH} characters and no spaces")
    else:
        token = new_token()
        click.echo(f"token for {email} (give it to the client; it is stored nowhere): {token}", err=True)
    click.echo(f"{hash_token(token)} {email}")


@main.command()
@click.option("--backend", envvar="BRIDGE_BACKEND", required=True, help="cloudtasks://projects/P/locations/L")
@_cloudtasks_options
@click.option("--queue", default="bridge-smoke", show_default=True, help="A pull queue of that location to test on.")
def smoke(queue: str, **options: Any) -> None:
    """Check, in a minute, that a project's Cloud Tasks v2beta2 pull queues do what the bridge needs.

    Creates, leases, renews (with a stale token, then the right one), cancels and deletes
    one task of its own, reads the queue's stats, and prints the exact status of every
    call. It deletes what it created. Exit status 1 when a check failed.
    """
    from backends.cloudtasks import CloudTasksBackend
    from backends.cloudtasks_smoke import smoke as run_smoke

    settings = _settings(**options)
    if urlsplit(settings.backend).scheme != "cloudtasks":
        raise click.ClickException(f"smoke checks a cloudtasks:// backend, not {settings.backend!r}")
    try:
        backend = open_backend(settings.backend, **settings.backend_options())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    assert isinstance(backend, CloudTasksBackend)
    try:
        passed = run_smoke(backend, queue, click.echo)
    finally:
        backend.close()
    if not passed:
        raise SystemExit(1)


@main.command()
@click.argument("urls", nargs=-1, metavar="URL_A [URL_B]")
@click.option("--project", default=DEFAULT_PROJECT, show_default=True, help="Project (app id) the calls name.")
@click.option(
    "--queue-prefix", default=DEFAULT_QUEUE_PREFIX, show_default=True, help="Start of each fresh queue's name."
)
@click.option("--queue", help="Run every scenario on this existing, empty queue (targets that cannot create queues).")
@click.option("--ledger", type=click.Path(path_type=Path, dir_okay=False), help="TOML file of accepted differences.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a JSON report here.")
@click.option("--scenario", "names", multiple=True, help="Run only this scenario (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="Name the scenarios and stop.")
@click.option(
    "--clock-tolerance",
    type=float,
    default=DEFAULT_CLOCK_TOLERANCE,
    show_default=True,
    help="Seconds of clock skew allowed.",
)
@click.option(
    "--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="Seconds to wait for one response."
)
@token_option
def compat(urls: tuple[str, ...], ledger: Path | None, json_path: Path | None, **options: Any) -> None:
    """Check one endpoint against the expectations, or compare two, scenario by scenario."""
    # Imported here: the Google API client is not needed to serve.
    from bridge.compat.command import UsageError, command

    names, list_only = options.pop("names"), options.pop("list_only")
    try:
        status = command(
            urls,
            options=Options(**options),
            names=names,
            ledger_path=ledger,
            json_path=json_path,
            list_only=list_only,
            echo=click.echo,
        )
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    raise SystemExit(status)
