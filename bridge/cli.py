"""The command line: ``python -m bridge serve`` and friends.

Every option has an environment twin of the same name (``--backend`` and
``BRIDGE_BACKEND``); the option wins. A bad setting stops the command with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from bridge.app import create_app
from bridge.queues import QueueFileError
from bridge.serving import gunicorn_options
from bridge.settings import (
    DEFAULT_LOG_LEVEL,
    DEFAULT_WORKER_CLASS,
    LOG_LEVELS,
    WORKER_CLASSES,
    Settings,
    SettingsError,
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
