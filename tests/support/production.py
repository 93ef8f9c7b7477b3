"""The bridge on its production worker, for the HTTP suite's ``redis-production`` variant:
gunicorn with the bridge's own worker class and options (`bridge.server.serving`), in a
process of its own, on a real Redis.

Starting gunicorn takes about a second, so one server serves every test with the same
settings on an xdist worker (`ProductionServers`, a few alive at once). Tests stay apart
because each starts on an empty database that only these servers use (FLUSHDB) with the
clock back at zero. A test moves the server's clock through a file that both processes
map: the served backend reads its shift from it on every call.

The server itself is tests/support/production_server.py, which imports no more than
the bridge does.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import redis

from backends.redis.backend import RedisBackend
from bridge.settings import definitions
from tests.support.harness import Harness
from tests.support.http import Clients
from tests.support.process import serving_process
from tests.support.production_server import CLOCK_FILE, SHIFT
from tests.support.redis_server import RedisServer, free_port

#: The Redis database of these servers (the other tests use database 0).
DATABASE = 1
#: Servers kept alive at once; the one used longest ago stops for a new one.
KEPT = 4


class ProductionBridge(Clients):
    """One gunicorn serving the bridge; `ProductionServers` starts and stops it."""

    def __init__(self, settings: dict[str, Any], redis_url: str, clock: Path, folder: Path) -> None:
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("BRIDGE_")}
        env.update({definitions()[name].envvar: _text(value) for name, value in settings.items()})
        env.update({"BRIDGE_BACKEND": redis_url, "BRIDGE_PORT": str(port), CLOCK_FILE: str(clock)})
        env.setdefault("BRIDGE_LOG_LEVEL", "warning")
        command = [sys.executable, "-m", "tests.support.production_server"]
        root = Path(__file__).resolve().parents[2]
        self.log = folder / f"gunicorn-{port}.log"
        self._serving = serving_process(command, cwd=root, env=env, port=port, log=self.log)
        self.process: subprocess.Popen[bytes] = self._serving.__enter__()
        super().__init__(f"http://127.0.0.1:{port}")

    def close(self) -> None:
        """The test's clients only: the server outlives the test; `stop` ends it."""
        self.close_clients()

    def stop(self) -> None:
        # SIGQUIT: gunicorn's quick stop; SIGTERM would wait out kept-alive connections.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            self.process.wait(30)
        self._serving.__exit__(None, None, None)


def _text(value: object) -> str:
    """A setting's value as its environment variable holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


class ProductionServers:
    """The production servers of one test process (an xdist worker), by their settings."""

    def __init__(self, redis_server: RedisServer, folder: Path) -> None:
        self.url = f"redis://127.0.0.1:{redis_server.port}/{DATABASE}"
        self.folder = folder
        self.clock = folder / "clock"
        self.clock.write_bytes(SHIFT.pack(0))
        self._clock_fd = os.open(self.clock, os.O_RDWR)
        self._redis = redis.Redis(port=redis_server.port, db=DATABASE)
        self._servers: OrderedDict[tuple[tuple[str, str], ...], ProductionBridge] = OrderedDict()

    def harness(self, **options: Any) -> Harness:
        """A backend on the servers' database, emptied, with the clock at zero, for one test."""
        self._redis.flushdb()
        self.set_clock(0)
        backend = RedisBackend.from_url(self.url, **options)

        def move_clock(us: int) -> None:
            backend.clock_shift_us += us
            self.set_clock(backend.clock_shift_us)

        return Harness("redis-production", self.url, backend, move_clock)

    def set_clock(self, shift_us: int) -> None:
        os.pwrite(self._clock_fd, SHIFT.pack(shift_us), 0)

    def serve(self, **settings: Any) -> ProductionBridge:
        """A server with these settings (`Settings` fields), started unless one runs."""
        settings = {name: self._kept(value) for name, value in settings.items()}
        key = tuple(sorted((name, _text(value)) for name, value in settings.items()))
        server = self._servers.pop(key, None)
        if server is None or server.process.poll() is not None:
            server = ProductionBridge(settings, self.url, self.clock, self.folder)
        self._servers[key] = server
        while len(self._servers) > KEPT:
            self._servers.popitem(last=False)[1].stop()
        return server

    def _kept(self, value: object) -> object:
        """A file the settings name, copied where it outlives the test, named by its content."""
        if not isinstance(value, Path):
            return value
        data = value.read_bytes()
        copy = self.folder / f"{hashlib.sha256(data).hexdigest()[:16]}{value.suffix}"
        copy.write_bytes(data)
        return copy

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
        self._redis.close()
        os.close(self._clock_fd)
