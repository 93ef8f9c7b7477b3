"""The gRPC server's bounds, as the HTTP worker bounds HTTP (`bridge.server.workers`).

What a client can hold on the gRPC port, and for how long:

- **a connection that sends nothing**: closed ``head_timeout`` seconds after it was
  accepted if it has not sent HTTP/2's preface (``grpc.server_handshake_timeout_ms``;
  gRPC's default is 120 s);
- **a connection with no call open**: closed (GOAWAY, then close) after ``head_timeout``
  seconds (``grpc.max_connection_idle_ms``), as an idle HTTP keep-alive connection is.
  A client's channel reconnects on its next call without the caller noticing;
- **calls open on one connection**: at most `MAX_STREAMS_PER_CONNECTION` (HTTP/2's
  SETTINGS_MAX_CONCURRENT_STREAMS, ``grpc.max_concurrent_streams``). grpcio's client
  holds back calls past it, but gRPC's server counts a call until it has let go of it,
  so a client that fires hundreds at once on one channel sees some refused
  (UNAVAILABLE, which Google's clients retry for the methods that may be repeated);
  20,000 calls at once on one connection took a worker from 78 MiB to 294 or more (and
  left it at 142), 86 MiB with the bound;
- **calls open in one process**: at most `MAX_CALLS`; a call past it is answered
  RESOURCE_EXHAUSTED at once instead of waiting, its request held in memory;
- **a call whose request does not arrive**: gRPC's sync server gives a unary call a
  thread before its request message is in and that thread waits for it with no time
  limit, so eight calls that sent their headers and nothing more held every thread of
  the front. `CallGuard` cancels a call whose request has not arrived ``head_timeout``
  seconds after it reached the server (`TimedExecutor` says when that was), or
  `GRACE` seconds after a thread took it if that is later, as a stalled HTTP body is
  answered 400. Counted from when a thread took them, 16 such calls held the front
  twice the head timeout, 8 threads at a time;
- **memory after a flood**: what a flood of calls made the process allocate went back
  to the C allocator when the calls ended, but not to the system: 20 connections of
  1,000 calls of 10 KB each left the worker 52 MiB larger (77 -> 129 MiB), 81 MiB after
  ``malloc_trim``. `CallGuard` trims once `TRIM_AFTER_CALLS` calls were served since
  it last did and then none was open for ``head_timeout`` seconds (by then the flood's
  idle connections are closed too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

#: Calls one connection may have open at once (RFC 9113 6.5.2 asks for no fewer than 100).
MAX_STREAMS_PER_CONNECTION = 100
#: Calls one process's gRPC server holds at once, running or waiting for a thread.
MAX_CALLS = 256
#: Calls served after which the next quiet moment gives memory back (`release_memory`).
TRIM_AFTER_CALLS = 1000
#: Seconds a call taken by a thread past its head timeout still has for its request:
#: one whose request is in gets it at once, one whose request is not is let go quickly.
GRACE = 0.1

#: When the task a server thread runs was handed to the pool (`TimedExecutor`).
_task = threading.local()


class TimedExecutor(futures.ThreadPoolExecutor):
    """A thread pool whose tasks know, while they run, when they were handed to it: for
    a gRPC server's pool, when a call reached the server."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        queued = time.monotonic()

        def timed() -> Any:
            _task.queued = queued
            return fn(*args, **kwargs)

        return super().submit(timed)


def release_memory() -> None:
    """Give the C allocator's free memory back to the system (glibc's ``malloc_trim``;
    nothing where there is none)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is not None:
        trim(0)


def server_options(max_request_bytes: int, head_timeout: float) -> list[tuple[str, int]]:
    """The channel arguments of the front's gRPC server."""
    milliseconds = int(head_timeout * 1000)
    return [
        # A lease response may reach 32 MB, past gRPC's default 4 MB (as Google's transport).
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", max_request_bytes),
        # Every gunicorn worker of one bridge binds the port (`bridge.server.serving`).
        ("grpc.so_reuseport", 1),
        ("grpc.server_handshake_timeout_ms", milliseconds),
        ("grpc.max_connection_idle_ms", milliseconds),
        ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
    ]


class CallGuard:
    """Watches a server's calls from one thread of its own: cancels those whose request
    message has not arrived ``seconds`` after they started, so that none holds a server
    thread longer, and gives memory back after a flood of calls."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: [deadline, context] of each call waiting for its request, oldest first; the
        #: context becomes None once the request is in (or the call is over).
        self._waiting: deque[list[Any]] = deque()
        #: Calls in the handler now, and calls served since memory was last given back.
        self._open = self._served = 0
        #: Since when no call has been open, once `TRIM_AFTER_CALLS` were served (monotonic seconds).
        self._quiet_since: float | None = None
        self._count = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="grpc-call-guard", daemon=True)
        self._thread.start()

    def handler(self, unary: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``unary`` (a unary-unary method handler) taking its request through the guard.

        A unary call and a client-streaming call of one message are the same on the wire;
        served as the latter, the handler gets the call before its request and can wait
        for it with a limit."""
        behavior: Callable[[Any, grpc.ServicerContext], Any] = unary.unary_unary

        def guarded(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with self._count:
                self._open += 1
                self._served += 1
            try:
                return behavior(self.first(requests, context), context)
            finally:
                with self._count:
                    self._open -= 1

        return grpc.stream_unary_rpc_method_handler(
            guarded, request_deserializer=unary.request_deserializer, response_serializer=unary.response_serializer
        )

    def first(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        """The call's request message, waited for until ``seconds`` after the call reached
        the server, or `GRACE` if that is past (then the call is cancelled and this
        raises grpc.RpcError, which gRPC takes as the call's end)."""
        now = time.monotonic()
        entry = [max(getattr(_task, "queued", now) + self.seconds, now + GRACE), context]
        self._waiting.append(entry)
        try:
            return next(requests)
        except StopIteration:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "A call of this method carries one request message")
        finally:
            entry[1] = None

    def _watch(self) -> None:
        wait = 1.0
        while not self._stopped.wait(wait):
            now = time.monotonic()
            wait = 1.0
            while self._waiting:
                deadline, context = self._waiting[0]
                if context is not None and deadline > now:
                    # Up to the oldest one's deadline: calls come in deadline order.
                    wait = min(wait, max(deadline - now, 0.01))
                    break
                self._waiting.popleft()
                if context is not None:
                    context.cancel()
                    # Its thread takes the next call at once, maybe another stalled one.
                    wait = GRACE
            if self._served < TRIM_AFTER_CALLS or self._open:
                self._quiet_since = None
            elif self._quiet_since is None:
                self._quiet_since = now
            elif now - self._quiet_since >= self.seconds:
                self._served, self._quiet_since = 0, None
                release_memory()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
