"""Options shared by the commands that call a bridge (compat, the queue CLI)."""

from __future__ import annotations

import click

#: Where the commands that call a bridge find a token when --token is not given.
TOKEN_ENV = "BRIDGE_CLIENT_TOKEN"

#: ``--token``, for commands that call a bridge run with --auth token or google.
token_option = click.option(
    "--token",
    envvar=TOKEN_ENV,
    default=None,
    help=f"Bearer token to send, for a bridge run with --auth token or google (or {TOKEN_ENV}).",
)
