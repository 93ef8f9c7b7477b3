"""A Redis that cannot serve: the API error, with its cause in one line, logged once per outage.

Driver errors become API errors where they enter (`translated`), by class, never by
their text: unreachable or stalled, loading, out of memory, read-only, a cluster that
cannot serve are Unavailable (503); anything else is a plain ApiError (500). The
message of an Unavailable says why, in a few words that the start-up line, ``/readyz``
and the 503's body show as they are (`cause_of`)::

    connection refused at 127.0.0.1:6379
    redis:6379 did not answer in time (2 s to connect, 3 s a call)
    redis:6379 asks for a password: give it in the URL (redis://:PASSWORD@host:port)
    redis:6379 refused the URL's user or password
    TLS with redis:6379 failed: its certificate is not trusted (self-signed certificate)
    redis:6379 closed the connection: a TLS port reached with redis://? (rediss:// is TLS)

Each backend (so each process) logs a warning when Redis stops serving and one when it
serves again (`Outage`), instead of a traceback per call; the Unavailable errors of an
outage carry ``reported`` so that the fronts need not log them again, and no
``__cause__`` (the driver's error stays in ``__context__``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.cluster

from backends.errors import ApiError, Unavailable

log = logging.getLogger("bridge.redis")

#: Seconds to wait for a TCP connection before answering 503.
CONNECT_TIMEOUT = 2.0
#: Seconds to wait for a reply. The slowest script (a lease of 1,000 tasks) takes
#: milliseconds, so a Redis silent this long is stalled (DEBUG SLEEP, a fork on a full
#: machine, a network partition): the call answers 503 instead of holding a thread.
SOCKET_TIMEOUT = 3.0

#: Driver errors that mean the store cannot serve now, whatever their message says:
#: unreachable or stalled (credentials refused and loading are kinds of ConnectionError),
#: out of memory (maxmemory with noeviction), a read-only replica after a failover, a
#: cluster that is down, resharding or has an uncovered slot, or redirected too many
#: times (ClusterError), or something that does not answer as Redis does.
OUTAGES: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.InvalidResponse,
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a backend reaches Redis, as its causes name it."""

    #: host:port (the first node of a cluster), or what stands for it.
    where: str
    tls: bool = False
    #: Whether the URL gives a password (else a server asking for one wants it).
    password: bool = False

    @classmethod
    def of_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        return cls(
            f"{parts.hostname or 'localhost'}:{parts.port or 6379}", parts.scheme == "rediss", bool(parts.password)
        )

    @classmethod
    def of_client(cls, client: Any) -> Endpoint:
        """For a client made elsewhere (``memory://``, tests): what its settings say."""
        if isinstance(client, redis.cluster.RedisCluster):
            return cls("the Redis cluster")
        pool = getattr(client, "connection_pool", None)
        settings: dict[str, Any] = pool.connection_kwargs if pool is not None else {}
        if "host" in settings:
            return cls(
                f"{settings['host']}:{settings.get('port', 6379)}",
                bool(settings.get("ssl")),
                bool(settings.get("password")),
            )
        return cls(str(settings.get("path") or "the in-process store"))


def _os_error(exc: BaseException) -> OSError | None:
    """The operating system's error under a driver error (redis-py raises its own
    inside the handler of the socket's), if any."""
    seen = exc.__cause__ or exc.__context__
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ or seen.__context__
    return seen


def cause_of(exc: Exception, at: Endpoint) -> str:
    """Why Redis cannot serve, in a few words, from the driver's error and what lies under it."""
    where = at.where
    if isinstance(exc, redis.AuthenticationError):
        if at.password:
            return f"{where} refused the URL's user or password"
        return f"{where} asks for a password: give it in the URL (redis://:PASSWORD@host:port)"
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return f"{where} is loading its data"
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return f"{where} is out of memory (maxmemory)"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return f"{where} is a read-only replica"
    if isinstance(exc, redis.exceptions.InvalidResponse):
        return f"{where} does not answer as Redis does"
    if not isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"the cluster at {where} cannot serve ({type(exc).__name__}: {exc})"
    under = _os_error(exc)
    if isinstance(exc, redis.TimeoutError):
        hint = ": is that port TLS? (rediss:// is TLS, redis:// plain)" if at.tls else ""
        return f"{where} did not answer in time ({CONNECT_TIMEOUT:g} s to connect, {SOCKET_TIMEOUT:g} s a call){hint}"
    if isinstance(under, ssl.SSLCertVerificationError):
        return f"TLS with {where} failed: its certificate is not trusted ({under.verify_message})"
    if isinstance(under, ssl.SSLError):
        return f"TLS with {where} failed ({under.reason}): is that port TLS? (rediss:// is TLS, redis:// plain)"
    if isinstance(under, ConnectionRefusedError):
        return f"connection refused at {where}"
    if isinstance(under, socket.gaierror):
        return f"{where.rpartition(':')[0]} is not a known host ({under.strerror})"
    if under is None or isinstance(under, ConnectionResetError | BrokenPipeError):
        hint = "" if at.tls else ": a TLS port reached with redis://? (rediss:// is TLS)"
        return f"{where} closed the connection{hint}"
    return f"cannot reach {where}: {under.strerror or under}"


class Outage:
    """One backend's view of whether Redis serves: a warning when it stops, one when it
    serves again, and nothing in between however many calls fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: When the current outage started (monotonic seconds); None while Redis serves.
        self.since: float | None = None
        self._failed = 0

    def failed(self, cause: str) -> None:
        with self._lock:
            self._failed += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.warning("The task store (Redis) cannot serve: %s. Calls answer 503 until it serves again.", cause)

    def served(self) -> None:
        with self._lock:
            if self.since is None:
                return
            seconds, failed = time.monotonic() - self.since, self._failed
            self.since, self._failed = None, 0
        log.warning("The task store (Redis) serves again, after %.1f s and %d calls answered 503.", seconds, failed)


@contextlib.contextmanager
def translated(at: Endpoint = Endpoint("Redis"), outage: Outage | None = None) -> Iterator[None]:
    """Turn driver errors into API errors (see the module's docstring); with ``outage``,
    log its start and end there."""
    try:
        yield
    except OUTAGES as exc:
        cause = cause_of(exc, at)
        if outage is not None:
            outage.failed(cause)
        message = f"The task store (Redis) cannot take the request now: {cause}; try again shortly."
        raise Unavailable(message, cause=cause, reported=outage is not None) from None
    except redis.RedisError as exc:
        raise ApiError("The task store (Redis) failed.") from exc
    if outage is not None and outage.since is not None:
        outage.served()
