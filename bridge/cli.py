"""The command line: ``python -m bridge serve`` and ``hash-token``, and the tools.

Every option has an environment twin of the same name (``--backend`` and
``BRIDGE_BACKEND``); the option wins. A bad setting stops the command with one line.
The tools' commands (``compat``, ``smoke``, the queue CLI: `TOOLS`) live in `bridge_tools` and are
imported only when called, so serving imports none of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from bridge.access.auth import EMAIL, MIN_TOKEN_LENGTH, hash_token, new_token
from bridge.access.queues import QueueFileError
from bridge.app import create_app
from bridge.server.serving import backend_answer, gunicorn_options, port_problem, startup_line
from bridge.settings import Definition, Settings, SettingsError, definitions, own_definitions
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


def setting_options(settings: Iterable[Definition]) -> Callable[[F], F]:
    """An option for each setting, as its definition says (`bridge.settings`). The
    option passes text on (click reads the environment variable too); `Settings` parses
    and checks it, so that a bad value gets the same one line from either."""

    def decorate(command: F) -> F:
        for setting in reversed(list(settings)):
            extra = f"[env var: {setting.envvar}; default: {setting.shown_default}]"
            command = click.option(
                setting.flag,
                setting.name,
                envvar=setting.envvar,
                metavar=setting.metavar,
                help=f"{setting.help}  {extra}",
            )(command)
        return command

    return decorate


#: An option for each setting a backend takes besides its URL (`backends.BACKENDS`),
#: for the commands that open a backend (serve, smoke).
backend_setting_options = setting_options(
    [definition for name, definition in definitions().items() if name not in own_definitions()]
)


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
@setting_options(own_definitions().values())
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
