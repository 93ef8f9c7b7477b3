"""Where a request's time goes, in one process, with figures that repeat on a busy machine.

    python bench/hotpath.py                       # µs per request of each operation, and Redis's share
    python bench/hotpath.py --cprofile insert     # cProfile of N inserts, the top functions
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/hotpath.py --only insert -n 2000   # instructions: run twice (-n 1000, -n 2000), subtract

The app is built by the app factory on its own redis-server, with the request log on
(INFO, JSON, written to /dev/null) as gunicorn runs it, and is called as gunicorn calls
it: ``app(environ, start_response)`` with a fresh WSGI environ per request. The
reference (bench/reference_app.py) is called the same way, so the two differ by what the
bridge does and nothing else. Redis's own time per script comes from INFO commandstats.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging.config
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from backends.redis.backend import RedisBackend  # noqa: E402
from bench import reference_app  # noqa: E402
from bench.fill import fill, numbered, queue  # noqa: E402
from bench.load import Request  # noqa: E402
from bench.plan import PAYLOAD_BYTES  # noqa: E402
from bench.scenarios import (  # noqa: E402
    INSERT_REQUEST,
    LEASE_BULK,
    LEASE_BULK_REQUEST,
    LEASE_ONE,
    LEASE_ONE_REQUEST,
    REFERENCE,
    tasks_path,
)
from bench.services import redis_url, start_redis  # noqa: E402
from bridge import create_app  # noqa: E402
from bridge.ops.logs import logging_config  # noqa: E402
from bridge.settings import Settings  # noqa: E402

OPERATIONS = ("reference", "insert", "lease", "delete", "lease100")
WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _environ(request: Request, path: str | None = None) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it for ``request``."""
    target = path or request.path
    route, _, query = target.partition("?")
    body = request.body.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_USER_AGENT": "wrk",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _call(app: WSGI, environ: dict[str, Any]) -> None:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)

    result = app(environ, start_response)
    b"".join(result)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    if not status[0].startswith("2"):
        raise RuntimeError(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}: {status[0]}")


class Rig:
    """A redis-server, the bridge and the reference app on it, and each operation's requests."""

    def __init__(self, folder: Path, count: int) -> None:
        self.server = start_redis(folder)
        url = redis_url(self.server)
        self.client = redis.Redis.from_url(url)
        self.backend = RedisBackend.from_url(url)
        self.bridge = create_app(Settings(backend=url))
        self.reference = reference_app.create_app(url)
        fill(self.backend, queue(LEASE_ONE), numbered("t", 2000, PAYLOAD_BYTES))
        fill(self.backend, queue(LEASE_BULK), numbered("t", 2000, PAYLOAD_BYTES))
        self.count = count
        self.deleted = 0

    def close(self) -> None:
        self.client.close()
        self.backend.close()
        self.server.stop()

    def requests(self, operation: str) -> Iterable[tuple[WSGI, dict[str, Any]]]:
        """``count`` (app, environ) pairs; deletes name tasks inserted for them first."""
        if operation == "delete":
            start = self.deleted + 1
            self.deleted += self.count
            fill(self.backend, queue("delete"), numbered("d", self.count, PAYLOAD_BYTES, start=start))
            path = tasks_path("delete")
            return [
                (self.bridge, _environ(Request("DELETE", f"{path}/d{n:08d}"))) for n in range(start, start + self.count)
            ]
        app, request = {
            "reference": (self.reference, REFERENCE),
            "insert": (self.bridge, INSERT_REQUEST),
            "lease": (self.bridge, LEASE_ONE_REQUEST),
            "lease100": (self.bridge, LEASE_BULK_REQUEST),
        }[operation]
        return [(app, _environ(request)) for _ in range(self.count)]

    def run(self, operation: str) -> None:
        for app, environ in self.requests(operation):
            _call(app, environ)

    def script_usec(self) -> dict[str, tuple[int, float]]:
        stats = self.client.info("commandstats")
        return {name: (int(v["calls"]), float(v["usec"])) for name, v in stats.items()}


def _timings(rig: Rig, operations: Iterable[str], rounds: int) -> None:
    print(f"{'operation':<10} {'µs/request (best of rounds)':>28} {'Redis µs/request':>17}")
    for operation in operations:
        best = float("inf")
        redis_us = 0.0
        for _ in range(rounds):
            pairs = list(rig.requests(operation))
            before = rig.script_usec()
            started = time.perf_counter()
            for app, environ in pairs:
                _call(app, environ)
            elapsed = time.perf_counter() - started
            after = rig.script_usec()
            spent = sum(after[k][1] - before.get(k, (0, 0.0))[1] for k in after)
            best = min(best, elapsed / len(pairs) * 1e6)
            redis_us = spent / len(pairs)
        print(f"{operation:<10} {best:>28.1f} {redis_us:>17.1f}")


def _callgrind(state: str) -> None:
    """Under callgrind started with --instr-atstart=no, count only the requests."""
    if os.environ.get("HOTPATH_CALLGRIND"):
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per operation and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=OPERATIONS, help="run this operation -n times and stop (for callgrind)")
    parser.add_argument("--cprofile", choices=OPERATIONS, help="profile this operation, print the top functions")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    config = logging_config(os.environ.get("HOTPATH_LOG_LEVEL", "info"))
    config["handlers"]["stdout"]["stream"] = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run
    logging.config.dictConfig(config)
    with tempfile.TemporaryDirectory(prefix="profile-") as scratch:
        rig = Rig(Path(scratch), args.n)
        try:
            # Warm: scripts loaded, connections open, caches filled.
            for operation in OPERATIONS:
                for app, environ in list(rig.requests(operation))[:50]:
                    _call(app, environ)
            if args.only:
                pairs = list(rig.requests(args.only))
                _callgrind("on")
                for app, environ in pairs:
                    _call(app, environ)
                _callgrind("off")
            elif args.cprofile:
                pairs = list(rig.requests(args.cprofile))
                profiler = cProfile.Profile()
                profiler.enable()
                for app, environ in pairs:
                    _call(app, environ)
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("SORT", "tottime")).print_stats(args.top)
                print(out.getvalue())
            else:
                _timings(rig, OPERATIONS, args.rounds)
        finally:
            rig.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
