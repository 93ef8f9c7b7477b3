"""Task Queue Bridge, the server: the App Engine Task Queue REST API v1beta2 (pull
queues) over the storage of `backends`, and the client workers use to call it.

`create_app` is the only way to build the server (tests, ``python -m bridge serve``
and ``gunicorn 'bridge:create_app()'`` all call it); it is imported when first asked
for, so that a worker importing `bridge.client` loads neither Flask, gunicorn nor
redis. README's Layout section draws the packages: the three fronts (`taskqueue`,
`cloudtasks`, `console`), what they share (`gate`, `access`, `ops`, `settings`,
`errors`), serving (`server`, `cli`) and `client`, which the server never imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.version import __version__

if TYPE_CHECKING:
    from bridge.app import create_app

__all__ = ["__version__", "create_app"]


def __getattr__(name: str) -> Any:
    # PEP 562: `bridge.create_app` and `from bridge import create_app` import the app
    # factory only then.
    if name == "create_app":
        from bridge.app import create_app

        return create_app
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")
