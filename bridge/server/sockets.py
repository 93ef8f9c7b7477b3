"""Client sockets as the bridge's workers (`bridge.server.workers`) see them, and the
descriptors they come from: a reader that waits only so long, a writer that keeps what
gunicorn writes, a look for a client that left, a whole error response, the open-files
limit."""

from __future__ import annotations

import resource
import socket
from http import HTTPStatus
from typing import Any

import orjson

from bridge.errors import envelope


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the limit now in force.

    Every connection, gRPC's included, is a descriptor: with the common soft limit of
    1,024, a thousand idle connections were enough to make accepts fail."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft  # e.g. an unlimited hard limit the system does not take as a soft one
    return hard


class Captured:
    """The client socket as gunicorn's error page writer sees it: what it writes is kept."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Patient:
    """The client socket as the request parser reads it: a read waits ``seconds`` at
    most, then raises TimeoutError (an OSError, which the app answers as a bad body)."""

    def __init__(self, sock: Any, seconds: float) -> None:
        self._sock = sock
        self._seconds = seconds
        #: Whether a read gave up: the rest of that request will not be waited for.
        self.stalled = False

    def recv(self, size: int) -> bytes:
        prior = self._sock.gettimeout()
        self._sock.settimeout(self._seconds if prior is None else min(prior, self._seconds))
        try:
            return self._sock.recv(size)  # type: ignore[no-any-return]
        except TimeoutError:
            self.stalled = True
            raise
        finally:
            self._sock.settimeout(prior)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def error_response(status: int, reason: str, message: str, *extra: str) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, its body Google's envelope."""
    body = orjson.dumps(envelope(status, reason, message))
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    head = "".join(
        (
            f"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\n",
            *(line + "\r\n" for line in extra),
            f"Content-Type: application/json; charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n",
        )
    )
    return head.encode("latin-1") + body


def client_gone(sock: socket.socket) -> bool:
    """Whether the client closed (or reset) its side; never waits. A client that still
    sends (a body, a next request) hides its close behind those bytes: it counts as there."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
