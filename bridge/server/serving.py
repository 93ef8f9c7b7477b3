"""How gunicorn runs the bridge: one table of options, derived from `Settings`.

Both ways of starting a server read this table, so they cannot disagree:
``gunicorn -c gunicorn.conf.py 'bridge:create_app()'`` (the container's command) loads
it through gunicorn.conf.py, and ``python -m bridge serve`` sets it on its embedded
gunicorn. The worker model's default and the measurement behind it are in
bench/README.md.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gunicorn.glogging import Logger
from prometheus_client import multiprocess

from backends.base import Backend
from backends.errors import ApiError
from bridge.ops.logs import logging_config
from bridge.ops.metrics import MULTIPROC_ENV
from bridge.server.sockets import raise_open_files_limit
from bridge.server.workers import worker_class
from bridge.settings import Settings
from bridge.taskqueue.dialect import DEFAULT_DIALECT
from bridge.version import __version__

#: Seconds a stopping worker gives in-flight requests (SIGTERM) before it is killed;
#: under the 30 s that Kubernetes and docker-compose.yml wait before SIGKILL.
GRACEFUL_TIMEOUT = 25
#: Seconds a worker may stay silent before the master replaces it; the slowest call
#: (a 1,000-task lease of 1 MiB payloads) takes well under a second.
TIMEOUT = 60
#: Seconds an idle keep-alive connection stays open; workers keep theirs between polls.
KEEPALIVE = 5
#: Connections one worker holds at once (gunicorn's default); past it, new ones wait
#: in the listen backlog until the head deadline frees places.
WORKER_CONNECTIONS = 1000

log = logging.getLogger("bridge.serving")


class NoAccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, without its access log: the bridge writes its own request line.

    Given a logging configuration, gunicorn builds an access line's fields for every
    request (the time formatted with its zone, the method and path, every request and
    response header and every WSGI environ entry) and only then lets the logger's level
    drop it: a request's cost that the line the bridge writes made useless.
    """

    @property
    def access_log_enabled(self) -> bool:
        # gunicorn's access() and its protocol handlers ask this before building anything.
        return False


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings by name, as gunicorn.conf.py exports them."""
    options: dict[str, Any] = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        # The name stays gthread or sync; the class is the bridge's hardened subclass.
        "worker_class": worker_class(settings.worker_class, settings.head_timeout),
        # gunicorn turns sync into gthread when threads > 1, so sync gets exactly one.
        "threads": settings.threads if settings.worker_class == "gthread" else 1,
        # Whole heads reach the threads, so idle connections cost no thread: keep many.
        "worker_connections": WORKER_CONNECTIONS,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "timeout": TIMEOUT,
        "keepalive": KEEPALIVE,
        "loglevel": settings.log_level,
        "logconfig_dict": logging_config(settings.log_level),
        "logger_class": NoAccessLogger,
        # One control socket per user would make two bridges on a machine collide.
        "control_socket_disable": True,
        "on_starting": on_starting,
        "child_exit": child_exit,
    }
    if settings.grpc_port is not None:
        options["on_starting"] = functools.partial(on_starting, grpc=(settings.host, settings.grpc_port))
        address = f"{settings.host}:{settings.grpc_port}"
        options["post_worker_init"] = functools.partial(
            start_grpc, address, settings.max_body_bytes, settings.head_timeout
        )
        options["worker_exit"] = stop_grpc
    return options


def start_grpc(address: str, max_request_bytes: int, head_timeout: float, worker: Any) -> None:
    """In each worker, once its app is built: serve the Cloud Tasks front over gRPC too.

    Every worker binds the same port with SO_REUSEPORT, so the kernel spreads gRPC
    connections over the workers as it does the HTTP ones, and each serves them from
    its own backend client; a worker that dies takes only its connections with it.
    The master made sure no other program had the port first (`hold_grpc_port`).
    """
    from bridge.cloudtasks.grpc_server import GrpcFront

    front = worker.wsgi.extensions["cloudtasks"]
    worker.cloudtasks_grpc = GrpcFront(front, address, max_request_bytes=max_request_bytes, head_timeout=head_timeout)
    log.info("Cloud Tasks v2beta2 gRPC front listening on %s (worker %s)", address, os.getpid())


def stop_grpc(server: Any, worker: Any) -> None:
    """In a stopping worker: let gRPC calls in flight finish, as HTTP ones do."""
    front = getattr(worker, "cloudtasks_grpc", None)
    if front is not None:
        front.stop(GRACEFUL_TIMEOUT)


def on_starting(server: Any, *, grpc: tuple[str, int] | None = None) -> None:
    """In the master, before any worker: all the open files the system allows (the
    workers inherit the limit), the gRPC port (host, port) held if there is one, and
    the metrics folder empty. Raises RuntimeError, which gunicorn prints before it
    exits, when the gRPC port is taken."""
    raise_open_files_limit()
    if grpc is not None:
        server.bridge_grpc_hold = hold_grpc_port(*grpc)
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        # Files of a previous run would be added to this run's counters. Only the
        # client's own files go, in case the variable names a folder shared with others.
        for entry in path.glob("*.db"):
            entry.unlink()
    elif server.cfg.workers > 1:
        log.warning("%s is not set: /metrics will count only the worker that answers the scrape", MULTIPROC_ENV)


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker died: retire its live gauges' files."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def backend_answer(backend: Backend) -> str:
    """Whether the backend answers now, in a few words for the start-up line."""
    try:
        backend.ping()
    except ApiError as exc:
        return f"NOT ANSWERING ({exc.message}); /readyz says 503 until it does"
    return "answering"


def port_problem(host: str, port: int, option: str = "--port (BRIDGE_PORT)") -> str | None:
    """Why the server could not listen on host:port, in one line naming the ``option``
    that sets the port; None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gunicorn binds: a port whose last connections are closing is free to use.
        # Without SO_REUSEPORT, so a port that others listen on with it is taken too.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use by another program: choose another with {option}"
            return f"cannot listen on {host}:{port} ({exc.strerror}): check --host (BRIDGE_HOST) and {option}"
    return None


#: The option that sets the gRPC port, as messages name it.
GRPC_PORT_OPTION = "--grpc-port (BRIDGE_GRPC_PORT)"


def hold_grpc_port(host: str, port: int) -> socket.socket | None:
    """Make sure only this bridge's workers will serve gRPC on host:port; what holds it.

    The workers bind the port with SO_REUSEPORT, and the kernel lets any process of the
    same user do that too and splits connections between them: a second bridge on the
    port would start and silently take half of the first one's clients. So the master
    checks before any worker starts, in two ways. It binds the port itself without
    SO_REUSEPORT, which fails while any program listens there, the workers of another
    bridge included (`port_problem`). And it holds, for as long as it runs, a name in
    Linux's abstract socket namespace made of the host and port, which fails while
    another bridge's master holds it, even in the moments when that bridge has no
    worker listening (starting, or replacing them all). The name is let go when the
    master and its workers (which inherit it) have ended, however they end; where there
    is no such namespace only the first check is made, and None returned.

    Raises RuntimeError naming the port and the option when either check fails.
    """
    hold = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        hold.bind(f"\0task-queue-bridge/grpc/{host}:{port}")
    except OSError as exc:
        hold.close()
        if exc.errno == errno.EADDRINUSE:
            raise RuntimeError(
                f"gRPC port {port} on {host} is served by another Task Queue Bridge: "
                f"choose another with {GRPC_PORT_OPTION}"
            ) from None
        return _probed(host, port, None)  # no abstract namespace on this system
    return _probed(host, port, hold)


def _probed(host: str, port: int, hold: socket.socket | None) -> socket.socket | None:
    """``hold``, once no program listens on host:port (closed, and RuntimeError, if one does)."""
    problem = port_problem(host, port, GRPC_PORT_OPTION)
    if problem:
        if hold is not None:
            hold.close()
        raise RuntimeError(f"gRPC: {problem}")
    return hold


def _shown(url: str) -> str:
    """A backend URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def startup_line(settings: Settings, backend_answer: str) -> str:
    """The one line a new user reads first: what runs, on what, and where to point a client."""
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
    root = (settings.public_url or f"http://{shown_host}:{settings.port}").rstrip("/")
    queues = f"queues from {settings.queues}" if settings.queues else "no queue file (queues are made on first use)"
    grpc = "" if settings.grpc_port is None else f"Cloud Tasks v2beta2 gRPC {shown_host}:{settings.grpc_port}; "
    # Said only when it is not Google's: a worker's author must not miss that it is another.
    dialect = f" (dialect {settings.dialect})" if settings.dialect != DEFAULT_DIALECT else ""
    return (
        f"Task Queue Bridge {__version__}: backend {_shown(settings.backend)} {backend_answer}; {queues}; "
        f"auth {settings.auth}; API{dialect} {root}/taskqueue/v1beta2/projects/; {grpc}"
        f"Discovery {root}/discovery/v1/apis/taskqueue/v1beta2/rest; console {root}/console/"
    )
