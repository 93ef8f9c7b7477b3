"""The production variant's server (tests/support/production.py starts it): gunicorn
exactly as ``python -m bridge serve`` configures it, whose backend's clock shift is the
one the test's process writes in a file both map.

Run as ``python -m tests.support.production_server`` with the ``BRIDGE_*`` settings and
``CLOCK_FILE`` in its environment. It imports what the bridge imports, and no test code,
so that it starts quickly.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

from flask import Flask
from gunicorn.app.base import BaseApplication

from backends.redis.backend import RedisBackend
from bridge.app import create_app
from bridge.server.serving import gunicorn_options
from bridge.settings import Settings

#: The variable naming the clock file, in the server's environment.
CLOCK_FILE = "CLOCK_FILE"
#: The clock file's content: the shift in µs.
SHIFT = struct.Struct("<q")


class _ClockFromFile(RedisBackend):
    """The Redis backend whose clock shift is the one the test's process wrote in the file."""

    clock: mmap.mmap | None = None

    @property
    def clock_shift_us(self) -> int:
        return 0 if self.clock is None else int(SHIFT.unpack_from(self.clock)[0])

    @clock_shift_us.setter
    def clock_shift_us(self, value: int) -> None:
        pass  # RedisBackend's constructor sets it to 0; only the file moves it


class _Served(BaseApplication):  # type: ignore[misc]
    """gunicorn exactly as ``python -m bridge serve`` configures it; the app's backend
    takes its clock from the file."""

    def __init__(self, settings: Settings, clock: Path) -> None:
        self.settings = settings
        self.clock = clock
        super().__init__()

    def load_config(self) -> None:
        for name, value in gunicorn_options(self.settings).items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        backend = _ClockFromFile.from_url(self.settings.backend, tombstone_seconds=self.settings.tombstone_seconds)
        assert isinstance(backend, _ClockFromFile)
        with self.clock.open("rb") as file:
            backend.clock = mmap.mmap(file.fileno(), SHIFT.size, access=mmap.ACCESS_READ)
        return create_app(self.settings, backend=backend)


if __name__ == "__main__":
    _Served(Settings.from_env(), Path(os.environ[CLOCK_FILE])).run()
