"""``python -m bridge`` and the installed ``task-queue-bridge`` command."""

from __future__ import annotations

import sys


def run(prog_name: str | None = None) -> None:
    """The bridge's command line; without the server's dependencies, one line saying how to get them."""
    try:
        from bridge.cli import main
    except ModuleNotFoundError as exc:
        # A plain install is the client's alone (pyproject.toml): name the extra.
        sys.exit(
            f"the bridge's commands need the server's dependencies ({exc.name} is missing): "
            "pip install 'task-queue-bridge[server]', or pip install -r requirements.txt in a clone"
        )
    main(prog_name=prog_name)


if __name__ == "__main__":
    run("python -m bridge")
