"""The command line: ``python -m bridge serve``, ``python -m bridge smoke``.

Every option has an environment twin of the same name (``--backend`` and
``BRIDGE_BACKEND``); the option wins. A bad setting stops the command with one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from backends import open_backend
from bridge.app import create_app
from bridge.queues import QueueFileError
from bridge.settings import Settings, SettingsError


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn with the bridge's settings; each worker builds its own app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.settings.port}")
        self.cfg.set("workers", self.settings.workers)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.settings.threads)
        # One control socket per user would make two bridges on a machine collide.
        self.cfg.set("control_socket_disable", True)

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


@click.group()
def main() -> None:
    """Task Queue Bridge: the App Engine Task Queue v1beta2 API over Redis or Cloud Tasks."""


@main.command()
@click.option("--backend", envvar="BRIDGE_BACKEND", help="Backend URL (default memory://).")
@click.option("--host", envvar="BRIDGE_HOST", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", envvar="BRIDGE_PORT", type=int, help="Port to listen on (default 8080).")
@click.option("--queues", envvar="BRIDGE_QUEUES", type=click.Path(path_type=Path), help="queue.yaml to serve.")
@click.option("--workers", envvar="BRIDGE_WORKERS", type=int, help="gunicorn worker processes (default 1).")
@click.option("--threads", envvar="BRIDGE_THREADS", type=int, help="Threads per worker (default 8).")
@click.option("--public-url", envvar="BRIDGE_PUBLIC_URL", help="URL clients use, when behind a proxy.")
@_cloudtasks_options
def serve(**options: Any) -> None:
    """Serve the API under gunicorn."""
    settings = _settings(**options)
    try:
        # Build one app before forking, so that a bad queue file or backend URL stops
        # here with its message instead of in every worker.
        create_app(settings).extensions["bridge"].backend.close()
    except (QueueFileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _Gunicorn(settings).run()


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
