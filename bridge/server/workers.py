"""The bridge's gunicorn workers: gthread and sync, hardened against hostile clients.

What they change in gunicorn's own classes (the measurements are in bench/README.md):

- **Whole heads first** (gthread). gunicorn's gthread worker hands a connection to a
  thread as soon as it is readable, and the thread then blocks until the request head
  is complete: 32 connections that each send one byte held every thread (8 per worker)
  for as long as they stayed open. Here the worker's event loop reads the head itself,
  without blocking, and a thread only gets a connection whose head (up to the blank
  line) is already buffered. A connection that has not completed its head
  ``head_timeout`` seconds after its first byte (or after it was accepted) is closed,
  and a body read that waits that long for its next byte fails, so a request whose
  body stops arriving frees its thread too.
- **Closing without waiting** (gthread). gunicorn closes a connection "gracefully":
  it half-closes, then reads what the client still sends until it closes too, for up
  to 2 s, in the worker's event loop, so 20 clients that sent a bad request and kept
  their sockets open stopped every other connection of the worker for 36 s. Here the
  lingering reads happen in the event loop without blocking it.
- **Liveness apart** (gthread). ``GET /healthz`` without a body runs on a thread of its
  own, so a stalled Redis that holds every API thread (up to the backend's socket
  timeout each) cannot delay the liveness probe: it answers while the process's event
  loop does. A probe that announces a body goes to the API threads like any request, so
  a body trickled to ``/healthz`` cannot hold the probe thread.
- **No work for a caller who is gone** (gthread). A request that waited for a thread
  `MAX_QUEUE_SECONDS` or more is answered 503 without reaching the app, so a backlog
  that cannot be served fails fast instead of queueing for as long as the backlog is
  deep; and a request that waited `GONE_CHECK_AFTER` or more is first checked for a
  client that closed its socket meanwhile (one non-blocking ``MSG_PEEK``): such a
  request is dropped, so a lease whose caller gave up leases nothing.
- **Out of file descriptors** (both). An accept that fails for want of descriptors
  (EMFILE, ENFILE) stops the worker accepting for `ACCEPT_PAUSE` seconds, where gunicorn
  let the error kill the worker (and, on ``memory://``, every task with it). The soft
  open-files limit is raised to the hard one at start (`raise_open_files_limit`).
- **Errors in Google's envelope** (both). gunicorn answers what it cannot parse (bad
  request line, 414, 431, 501 unknown Transfer-Encoding, a malformed chunked body)
  with an HTML page. The status stays gunicorn's choice; the body becomes the JSON
  envelope every other error of the bridge has.

Nothing here blocks the event loop: the loop builds a connection's HTTP/1 parser
itself instead of calling gunicorn's ``TConn.init``, which reads a cleartext HTTP/2
preface with a blocking read when ``http2_cleartext`` is on. The gthread worker serves
HTTP/1.1 only and refuses to start when gunicorn's HTTP/2 settings ask for more (they
can come from ``GUNICORN_CMD_ARGS``); TLS connections take gunicorn's own path.

**Contained.** Everything taken from gunicorn beyond its settings is named in
`bridge.server.gunicorn_internals` and checked at start. On a gunicorn that is not a
tested version, or whose internals differ, `worker_class` gives gunicorn's own gthread
or sync worker instead, and the master logs a warning naming what differs and what is
lost. Falling back rather than refusing, because requirements.txt pins the tested
version for the image, CI and the README's install, so another version only comes with
a deliberate install, where a working server with a warning serves better than none;
gunicorn's own worker is correct for well-behaved clients and safe behind a buffering
proxy. A worker object that lacks what gunicorn's ``__init__`` set refuses to boot.

gunicorn takes a worker class object as well as a name; `worker_class` builds one per
(kind, head timeout) and caches it, so the same settings always give the same class.
"""

from __future__ import annotations

import errno
import functools
import logging
import re
import selectors
import socket
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from gunicorn import http, util
from gunicorn.workers.gthread import TConn, ThreadWorker
from gunicorn.workers.sync import SyncWorker

from bridge.server import gunicorn_internals
from bridge.server.sockets import Captured, Patient, client_gone, error_response, raise_open_files_limit
from bridge.settings import DEFAULT_HEAD_TIMEOUT

#: gunicorn's own ceilings when a limit_request_* setting is 0 (unlimited).
_MAX_REQUEST_LINE = 8190
_MAX_HEAD = 1024 * 1024
#: How long, and how many bytes, a closing connection is read from (gunicorn's figures).
LINGER_SECONDS = 2.0
LINGER_BYTES = 65536
#: Threads kept for liveness probes; /healthz touches nothing, so one is plenty.
PROBE_THREADS = 1
_PROBE = re.compile(rb"(?:GET|HEAD) /healthz[ ?]")
#: A header line that announces a body (a length other than zero, or any transfer coding).
_BODY = re.compile(rb"\r\n(?:content-length[ \t]*:[ \t]*0*[1-9]|transfer-encoding[ \t]*:)", re.IGNORECASE)
#: Seconds a request may wait for a thread before it is answered 503 without running: about
#: one backend timeout (3 s), so a call that cannot be served fails in about that long.
MAX_QUEUE_SECONDS = 3.0
#: Seconds of waiting for a thread after which a request's client is checked for being gone.
GONE_CHECK_AFTER = 0.1
#: Seconds a worker stops accepting after an accept failed for want of file descriptors.
ACCEPT_PAUSE = 0.5
#: accept() errors that say the process or the system is out of descriptors (or memory).
_OUT_OF_FILES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
#: Seconds between two warnings about the same kind of trouble (descriptors, shed requests).
_WARN_EVERY = 60.0
_REASONS = {400: "invalid", 403: "forbidden", 414: "invalid", 417: "invalid", 431: "invalid", 501: "notImplemented"}

log = logging.getLogger("bridge.serving")


class _Warnings:
    """At most one log line per kind of trouble every `_WARN_EVERY` seconds, with a count."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: Any) -> None:
        self._count[kind] = self._count.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last.get(kind, -_WARN_EVERY) >= _WARN_EVERY:
            log.warning(message + " (%d since the last such line)", *args, self._count.pop(kind))
            self._last[kind] = now


def settle(cfg: Any) -> None:
    """Give gunicorn's config object every setting's value as an attribute of its own.

    gunicorn reads its settings as ``cfg.name`` many times per request (the parser, the
    WSGI environ, the worker), and its Config answers them from ``__getattr__``, which
    Python calls only after the ordinary lookup failed and built an AttributeError, with
    its message, that is then thrown away: about 25 of them per request. With the values
    in the object's own ``__dict__`` the ordinary lookup finds them at once. The values
    are the ones ``__getattr__`` returns (a worker's settings do not change while it
    runs: a reload starts new workers), and Config's properties stay in charge of their
    own names, since a property comes before an instance attribute.
    """
    own = vars(cfg)
    for name, setting in cfg.settings.items():
        own.setdefault(name, setting.get())


class JsonErrors:
    """Turns gunicorn's HTML error pages into Google's JSON envelope, gives the worker its
    settings as plain attributes (`settle`) and the process all the descriptors it may have."""

    def init_process(self) -> None:
        raise_open_files_limit()
        settle(self.cfg)  # type: ignore[attr-defined]
        super().init_process()  # type: ignore[misc]

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        # gunicorn picks the status and logs; only its page is replaced.
        captured = Captured(client)
        super().handle_error(req, captured, addr, exc)  # type: ignore[misc]
        status = int(captured.data.split(b" ", 2)[1]) if captured.data.startswith(b"HTTP/") else 500
        if status >= 500 and status != 501:
            message, reason = "Internal error", "backendError"
        else:
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
            message, reason = f"{phrase}: {str(exc)[:200]}", _REASONS.get(status, "invalid")
        try:
            util.write_nonblock(client, error_response(status, reason, message))
        except Exception:
            pass  # the client is gone; gunicorn ignores this too


class _Conn(TConn):  # type: ignore[misc]
    """gunicorn's connection, whose graceful close lingers without blocking the loop."""

    #: The head read so far (the event loop's buffer), while there is one.
    head: bytearray
    #: When the head must be complete (monotonic seconds).
    head_deadline: float
    #: When the request was handed to a thread pool (monotonic seconds).
    queued: float
    #: The ``queued`` of the last request a thread took.
    taken: float = 0.0

    def __init__(self, worker: HeadFirstThreadWorker, *args: Any) -> None:
        super().__init__(*args)
        self.worker = worker

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self.worker.linger(self.sock)
        else:
            util.close(self.sock)


class HeadFirstThreadWorker(JsonErrors, ThreadWorker):  # type: ignore[misc]
    """gthread whose threads only ever see connections with a whole request head."""

    head_timeout: float = DEFAULT_HEAD_TIMEOUT

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if "h2" in cfg.http_protocols or cfg.http2_cleartext != "off":
            raise RuntimeError(
                "the bridge's worker serves HTTP/1.1 only: drop h2 from gunicorn's http_protocols and "
                f"set http2_cleartext off (now {cfg.http_protocols!r} and {cfg.http2_cleartext!r}; "
                "check GUNICORN_CMD_ARGS), or put an HTTP/2 proxy in front"
            )

    def init_process(self) -> None:
        missing = gunicorn_internals.worker_problems(self)
        if missing:
            raise RuntimeError("the bridge's worker cannot run on this gunicorn: " + "; ".join(missing))
        #: Connections still sending their head, oldest deadline first.
        self.heads: deque[_Conn] = deque()
        #: Closing sockets still read from: [socket, deadline, bytes read], oldest first.
        self.lingering: deque[list[Any]] = deque()
        line = self.cfg.limit_request_line
        self.line_limit = line if 0 < line <= _MAX_REQUEST_LINE else _MAX_REQUEST_LINE
        fields = self.cfg.limit_request_fields * self.cfg.limit_request_field_size
        self.head_limit = min(self.line_limit + fields, _MAX_HEAD) if fields > 0 else _MAX_HEAD
        self.probe_pool = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="probe")
        #: Requests handed to the API threads, oldest first: (queued, future, connection).
        self.waiting: deque[tuple[float, Future[Any], _Conn]] = deque()
        #: Until when (monotonic seconds) the worker takes no new connection.
        self.accept_paused_until = 0.0
        self.warnings = _Warnings()
        super().init_process()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.probe_pool.shutdown(wait=False)
            for entry in self.lingering:
                util.close(entry[0])

    def linger(self, sock: socket.socket) -> None:
        """Close ``sock`` as RFC 9112 9.6 asks (FIN first, then read until the client
        closes, so that unread data does not turn into a reset that cuts the response),
        with the reads left to the event loop."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
        except OSError:
            util.close(sock)
            return
        entry = [sock, time.monotonic() + LINGER_SECONDS, 0]
        self.lingering.append(entry)
        self.poller.register(sock, selectors.EVENT_READ, functools.partial(self._on_linger_bytes, entry))

    def _on_linger_bytes(self, entry: list[Any], client: Any) -> None:
        try:
            data = entry[0].recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        entry[2] += len(data)
        if not data or entry[2] >= LINGER_BYTES:
            self.lingering.remove(entry)
            self._close_lingering(entry)

    def _close_lingering(self, entry: list[Any]) -> None:
        try:
            self.poller.unregister(entry[0])
        except (KeyError, ValueError, OSError):
            pass
        util.close(entry[0])

    def set_accept_enabled(self, enabled: bool) -> None:
        # gunicorn's loop turns accepting back on as soon as it has room; not during a pause.
        super().set_accept_enabled(enabled and time.monotonic() >= self.accept_paused_until)

    def accept(self, listener: Any) -> None:
        try:
            if self.cfg.is_ssl:
                # TLS must be unwrapped before a head can be read: gunicorn's own path.
                super().accept(listener)
                return
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno in _OUT_OF_FILES:
                # The connection stays in the listen backlog; a retry at once would fail again.
                self.accept_paused_until = time.monotonic() + ACCEPT_PAUSE
                self.set_accept_enabled(False)
                self.warnings.warn("accept", "accept failed (%s): not accepting for %.1f s", exc.strerror, ACCEPT_PAUSE)
            elif exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._await_head(_Conn(self, self.cfg, sock, addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: _Conn, client: Any) -> None:
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        # A kept-alive connection starts its next request: it waits for its head here too.
        # Its socket is non-blocking, readable and registered already: read at once, and
        # keep the registration (with the head's callback) only while the head is short.
        self.keepalived_conns.remove(conn)
        conn.head = bytearray()
        conn.head_deadline = time.monotonic() + self.head_timeout
        self.heads.append(conn)
        self.poller.modify(client, selectors.EVENT_READ, functools.partial(self._on_head_bytes, conn))
        self._on_head_bytes(conn, client)

    def enqueue_req(self, conn: _Conn) -> None:
        if self.cfg.is_ssl or conn.parser is None:
            super().enqueue_req(conn)
            return
        # gunicorn calls this for a kept-alive connection whose client already sent
        # (part of) its next request: that part may be an incomplete head too.
        self._await_head(conn, conn.parser.unreader.take_buffered())

    def _await_head(self, conn: _Conn, start: bytes = b"") -> None:
        conn.head = bytearray(start)
        conn.head_deadline = time.monotonic() + self.head_timeout
        if self._head_ready(conn.head):
            self._dispatch(conn)
            return
        conn.sock.setblocking(False)
        self.heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, functools.partial(self._on_head_bytes, conn))

    def _on_head_bytes(self, conn: _Conn, client: Any) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget_head(conn)
            conn.close()
            return
        conn.head += data
        if self._head_ready(conn.head):
            self.poller.unregister(conn.sock)
            self.heads.remove(conn)
            self._dispatch(conn)

    def _dispatch(self, conn: _Conn) -> None:
        """Hand a connection whose head is buffered to a thread, as gunicorn would."""
        if conn.parser is None:
            # What gunicorn's TConn.init does for a new plain connection, without its
            # HTTP/2 preface read (a blocking read, here on the event loop).
            conn.parser = http.get_parser(self.cfg, Patient(conn.sock, self.head_timeout), conn.client)
            conn.initialized = True
        conn.parser.unreader.unread(bytes(conn.head))
        conn.data_ready = True
        head = conn.head
        del conn.head
        if _PROBE.match(head) and not _BODY.search(head, 0, head.find(b"\r\n\r\n") + 2):
            future = self.probe_pool.submit(self.handle, conn)
        else:
            conn.queued = queued = time.monotonic()
            future = self.tpool.submit(self._serve, conn)
            self.waiting.append((queued, future, conn))
        future.add_done_callback(lambda done: self.method_queue.defer(self.finish_request, conn, done))

    def _serve(self, conn: _Conn) -> Any:
        """In an API thread: gunicorn's handling of the request, unless its client left
        while it waited, or it waited so long that it is answered 503 (the event loop
        answers those it finds first, `_shed_waiting`)."""
        conn.taken = queued = conn.queued
        waited = time.monotonic() - queued
        if waited >= GONE_CHECK_AFTER:
            if client_gone(conn.sock):
                self.warnings.warn("gone", "dropped a request whose client left while it waited %.1f s", waited)
                return False
            if waited >= MAX_QUEUE_SECONDS:
                self._overloaded(conn, waited)
                return False
        return self.handle(conn)

    def _shed_waiting(self, now: float) -> None:
        """Answer 503 to the requests that waited `MAX_QUEUE_SECONDS` for a thread and
        still wait, so a backlog fails at that age rather than when a thread is free."""
        # Each request is looked at once, when it is that old: most were taken long before
        # (a thread marked it), and their futures, whose every question takes a lock,
        # are not asked anything.
        oldest = now - MAX_QUEUE_SECONDS
        waiting = self.waiting
        while waiting and waiting[0][0] <= oldest:
            queued, future, conn = waiting.popleft()
            # cancel() fails if a thread took it meanwhile; gunicorn's finish_request then
            # closes the connection of one it cancelled.
            if conn.taken != queued and future.cancel():
                self._overloaded(conn, now - queued)

    def _overloaded(self, conn: _Conn, waited: float) -> None:
        # The socket is still non-blocking (the head was read by the event loop) and
        # the answer small: it goes out whole or not at all, and never waits.
        self.warnings.warn("shed", "answered 503 to a request that waited %.1f s for a thread", waited)
        message = f"The server is overloaded: the request waited {waited:.1f} s to be served; try again"
        try:
            conn.sock.send(error_response(503, "backendError", message, "Retry-After: 1"))
        except OSError:
            pass

    def _keepalive_after(self, conn: _Conn, keepalive: bool) -> bool:
        # A body that stalled was answered (400): draining its rest would wait again.
        if isinstance(conn.parser.unreader.sock, Patient) and conn.parser.unreader.sock.stalled:
            return False
        return bool(super()._keepalive_after(conn, keepalive))

    def _head_ready(self, head: bytearray) -> bool:
        """Whether the buffered bytes are a whole head, or enough for gunicorn to refuse."""
        if b"\r\n\r\n" in head:
            return True
        # A request line or a head past gunicorn's limits: let it answer 414 or 431.
        too_long_line = len(head) > self.line_limit + 2 and b"\n" not in head[: self.line_limit + 2]
        return too_long_line or len(head) > self.head_limit

    def _forget_head(self, conn: _Conn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.heads.remove(conn)
        self.nr_conns -= 1

    def murder_pending(self) -> None:
        # gunicorn calls this on every turn of its event loop (at least once a second).
        super().murder_pending()
        now = time.monotonic()
        self._shed_waiting(now)
        while self.lingering and self.lingering[0][1] <= now:
            self._close_lingering(self.lingering.popleft())
        while self.heads and self.heads[0].head_deadline <= now:
            conn = self.heads[0]
            self._forget_head(conn)
            conn.close()
        if not self.alive:
            # Stopping: connections that have sent nothing yet are not waited for.
            for conn in [c for c in self.heads if not c.head]:
                self._forget_head(conn)
                conn.close()


class JsonErrorSyncWorker(JsonErrors, SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker, with its error pages in Google's envelope, that outlives
    running out of file descriptors."""

    def accept(self, listener: Any) -> None:
        try:
            super().accept(listener)
        except OSError as exc:
            if exc.errno not in _OUT_OF_FILES:
                raise
            # A sync worker has nothing else to do meanwhile: it waits, then tries again.
            log.warning("accept failed (%s): not accepting for %.1f s", exc.strerror, ACCEPT_PAUSE)
            time.sleep(ACCEPT_PAUSE)


def _stock(base: type, found: list[str]) -> type:
    """gunicorn's own worker ``base``, whose master warns why it runs instead of the bridge's."""

    def check_config(cls: type, cfg: Any, logger: Any) -> None:
        if hasattr(base, "check_config"):
            base.check_config(cfg, logger)
        logger.warning(
            "serving with gunicorn's own %s worker, not the bridge's, because %s. Lost: whole request heads "
            "before a thread is taken, closes that do not block, the separate /healthz thread, fast 503s "
            "for a backlog, and JSON error pages. Install the gunicorn of requirements.txt to get them back.",
            base.__name__,
            "; ".join(found),
        )

    return type(f"Stock{base.__name__}", (base,), {"check_config": classmethod(check_config)})


@functools.cache
def worker_class(kind: str, head_timeout: float = DEFAULT_HEAD_TIMEOUT) -> type:
    """The worker class gunicorn runs for ``kind`` (gthread or sync): the bridge's, or
    gunicorn's own when the installed gunicorn is not what the bridge's was written for."""
    found = gunicorn_internals.problems()
    if kind == "sync":
        return _stock(SyncWorker, found) if found else JsonErrorSyncWorker
    if found:
        return _stock(ThreadWorker, found)
    return type("HeadFirstThreadWorker", (HeadFirstThreadWorker,), {"head_timeout": head_timeout})
