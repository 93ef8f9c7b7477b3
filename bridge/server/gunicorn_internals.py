"""What the bridge's workers take from gunicorn beyond its settings, named in one place.

`bridge.server.workers` subclasses gunicorn's gthread and sync workers, overrides some of
their methods (one private, ``_keepalive_after``) and reads and sets their internals
(the event loop's ``poller``, the thread pool ``tpool``, ``method_queue.defer``,
``nr_conns``, a connection's parser and its ``unreader``). None of that is gunicorn's
documented interface, so it is listed here and checked:

- `problems` when the server starts (`bridge.server.workers.worker_class`, in the
  master): the installed gunicorn's version is one the workers were tested with, each
  method has the parameters it had, and a connection, its parser and the method queue
  built from the installed gunicorn have the attributes the workers use. Any problem
  and the server runs gunicorn's own worker instead, with a warning that says what was
  found and what is lost;
- `worker_problems` when a worker starts (its ``init_process``): the worker object has
  the attributes gunicorn's ``__init__`` set; a problem stops the start (gunicorn then
  halts: "Worker failed to boot").

The test suite runs `problems` against the installed gunicorn, so an upgrade that
changes any of this fails it; after checking the workers against a new release (the
whole suite, ``tests/test_stress.py`` above all), add its version to `TESTED_VERSIONS`.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from typing import Any

import gunicorn
from gunicorn import http, util
from gunicorn.config import Config
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import PollableMethodQueue, TConn, ThreadWorker
from gunicorn.workers.sync import SyncWorker

#: The gunicorn releases the workers were tested with (requirements.txt pins the first).
TESTED_VERSIONS = ("27.0.1",)

#: Methods the workers override or call, and the parameters gunicorn declares for them.
#: What each is relied on for is in `bridge.server.workers` where it is used.
METHODS: dict[tuple[type, str], tuple[str, ...]] = {
    (Worker, "init_process"): ("self",),
    (Worker, "handle_error"): ("self", "req", "client", "addr", "exc"),
    (ThreadWorker, "check_config"): ("cfg", "log"),
    (ThreadWorker, "run"): ("self",),
    (ThreadWorker, "accept"): ("self", "listener"),
    (ThreadWorker, "set_accept_enabled"): ("self", "enabled"),
    (ThreadWorker, "on_client_socket_readable"): ("self", "conn", "client"),
    (ThreadWorker, "enqueue_req"): ("self", "conn"),
    (ThreadWorker, "handle"): ("self", "conn"),
    (ThreadWorker, "finish_request"): ("self", "conn", "fs"),
    (ThreadWorker, "_keepalive_after"): ("self", "conn", "keepalive"),
    (ThreadWorker, "murder_pending"): ("self",),
    (SyncWorker, "accept"): ("self", "listener"),
    (TConn, "__init__"): ("self", "cfg", "sock", "client", "server"),
    (TConn, "close"): ("self", "graceful"),
    (PollableMethodQueue, "defer"): ("self", "callback", "args"),
}
#: Functions of gunicorn's modules the workers call, with their parameters.
FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "gunicorn.http.get_parser": (http.get_parser, ("cfg", "source", "source_addr", "http2_connection")),
    "gunicorn.util.close": (util.close, ("sock",)),
    "gunicorn.util.write_nonblock": (util.write_nonblock, ("sock", "data", "chunked")),
}
#: Settings the workers read from gunicorn's config, besides the ones the bridge sets.
SETTINGS = (
    "http_protocols",
    "http2_cleartext",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "keepalive",
    "worker_connections",
    "threads",
)
#: Attributes of a gthread worker object after gunicorn's ``__init__``.
WORKER_ATTRIBUTES = (
    "cfg",
    "log",
    "alive",
    "sockets",
    "tpool",
    "poller",
    "method_queue",
    "keepalived_conns",
    "nr_conns",
)
#: Attributes of a connection (TConn) the workers read or set.
CONNECTION_ATTRIBUTES = ("cfg", "sock", "client", "server", "parser", "initialized", "data_ready", "timeout")
#: Attributes of a connection's HTTP/1 parser's reader.
UNREADER_ATTRIBUTES = ("sock", "buf", "unread", "take_buffered")


def _parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


def _missing(thing: object, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not hasattr(thing, name)]


def problems() -> list[str]:
    """What in the installed gunicorn differs from what the workers were written for
    (empty when nothing does), one line each."""
    found = []
    if gunicorn.__version__ not in TESTED_VERSIONS:
        found.append(f"gunicorn {gunicorn.__version__} is not a tested version ({', '.join(TESTED_VERSIONS)})")
    for (owner, name), expected in METHODS.items():
        method = getattr(owner, name, None)
        if method is None:
            found.append(f"{owner.__name__}.{name} is gone")
        elif _parameters(method) != expected:
            found.append(f"{owner.__name__}.{name} takes {_parameters(method)}, not {expected}")
    for path, (function, expected) in FUNCTIONS.items():
        if _parameters(function) != expected:
            found.append(f"{path} takes {_parameters(function)}, not {expected}")
    config = Config()
    found += [f"setting {name} is gone" for name in SETTINGS if name not in config.settings]
    left, right = socket.socketpair()
    try:
        conn = TConn(config, left, ("127.0.0.1", 0), ("127.0.0.1", 0))
        found += [f"a connection has no {name}" for name in _missing(conn, CONNECTION_ATTRIBUTES)]
        unreader = getattr(http.get_parser(config, left, ("127.0.0.1", 0)), "unreader", None)
        found += [f"a parser's unreader has no {name}" for name in _missing(unreader, UNREADER_ATTRIBUTES)]
    finally:
        left.close()
        right.close()
    return found


def worker_problems(worker: object) -> list[str]:
    """What a gthread worker object lacks of what the bridge's worker uses (empty when nothing)."""
    return [f"the worker has no {name}" for name in _missing(worker, WORKER_ATTRIBUTES)]
