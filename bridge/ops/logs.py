"""Logs: one JSON line per call, and the JSON formatter every log line goes through.

The gate writes a call's line (`bridge.gate.record`), for HTTP requests and gRPC calls
alike: the method (Discovery method id, route endpoint, or the RPC as
``google.cloud.tasks.v2beta2.CloudTasks/LeaseTasks``), project, queue, status (HTTP, or
the gRPC code's name), duration, the number of tasks a lease or list handed out, the
error reason of a refusal, and a request id, taken from the caller's ``X-Request-Id``
(gRPC: ``x-request-id`` metadata) when it is a sane token, else made here, and echoed
back (a response header; gRPC trailing metadata) so a client can quote it::

    {"time": "2026-11-28T22:30:01.123Z", "level": "INFO", "logger": "bridge.request",
     "pid": 12, "message": "request", "request_id": "5f0c…", "method": "taskqueue.tasks.lease",
     "status": 200, "duration_ms": 1.84, "project": "s~my-app", "queue": "render",
     "http_method": "POST", "path": "/taskqueue/v1beta2/…/tasks/lease", "tasks": 10}

Never logged: bodies (payloads), the query string (``oauth_token`` and ``key`` travel
there), and headers other than the request id (``Authorization``). Health probes and
scrapes are logged at DEBUG, so that a probe every few seconds does not bury the API.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Flask, request

from bridge import entropy

REQUEST_ID_HEADER = "X-Request-Id"
#: A caller's request id is kept when it looks like an id; anything else is replaced,
#: so that a header cannot smuggle text or megabytes into the logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
#: Endpoints that probes and scrapers call every few seconds.
QUIET_ENDPOINTS = frozenset({"healthz", "readyz", "metrics"})

log = logging.getLogger("bridge.request")
#: The record attribute that carries a request line's fields to the formatter.
FIELDS = "fields"
#: Where a request's id is kept, in its WSGI environ.
_ID = "bridge.request_id"
#: Where a view and the error handler leave what the request line reports: tasks handed
#: out, the error's reason, and the method's name where the route's endpoint is not it.
TASKS = "bridge.log_tasks"
REASON = "bridge.log_reason"
METHOD = "bridge.log_method"

#: Attributes every LogRecord has; whatever else a record carries came in ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, pid, message, and the ``extra`` fields.

    It runs once per request, so it is kept cheap: orjson, and the request line's fields
    handed over in one ``fields`` mapping instead of being searched for in the record.
    """

    #: The last second formatted, and its text: lines come many to a second.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        line: dict[str, Any] = {
            "time": f"{cached[1]}.{int(created * 1000) % 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = record.__dict__.get(FIELDS)
        if fields is not None:
            line.update(fields)
        else:
            for key, value in vars(record).items():
                if key not in _STANDARD and not key.startswith("_"):
                    line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


#: A request line is written at most this long after its request...
FLUSH_SECONDS = 0.1
#: ...or as soon as this many bytes of lines wait.
FLUSH_BYTES = 64 * 1024


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes INFO and DEBUG lines in batches.

    A write per line cost the busiest call of the API (a lease of one task, under
    gunicorn with 8 threads) about 100 µs of CPU, a sixth of the request, far more
    than the write itself (1 µs): each write lets go of the GIL, and one of the other
    threads, all busy, takes it. Lines now wait in memory until `FLUSH_BYTES` of them
    have gathered or `FLUSH_SECONDS` passed (a thread of the process writes them then,
    as an access log with a buffer does), so a busy worker writes a few times a second.
    A WARNING or worse is written at once, with whatever waits before it, and so is
    everything at exit (``logging.shutdown``, which a worker runs as it stops) and
    before a fork (so that a gunicorn worker starts with nothing of its parent's). What
    a killed process (SIGKILL) had not written, its last tenth of a second, is lost.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._waiting_bytes = 0
        #: Whether this process's flushing thread runs: a forked worker starts its own.
        self._flushing = False
        os.register_at_fork(before=self._flush_quietly, after_in_child=self._forget)

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle holds self.lock.
        try:
            line = self.format(record) + self.terminator
            self._waiting.append(line)
            self._waiting_bytes += len(line)
            if record.levelno >= logging.WARNING or self._waiting_bytes >= FLUSH_BYTES:
                self._write()
            elif not self._flushing:
                self._flushing = True
                threading.Thread(target=self._flush_every, name="log-flush", daemon=True).start()
        except Exception:  # noqa: BLE001 - as logging.StreamHandler.emit reports it
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _write(self) -> None:
        text = "".join(self._waiting)
        self._waiting.clear()
        self._waiting_bytes = 0
        if text:
            self.stream.write(text)
        if hasattr(self.stream, "flush"):
            self.stream.flush()

    def _forget(self) -> None:
        self._waiting.clear()
        self._waiting_bytes = 0
        self._flushing = False

    def _flush_every(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except (OSError, ValueError):
            # A closed or broken stream: the lines have nowhere to go, as with a write per line.
            pass


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` document: every logger, gunicorn's too, as JSON on stdout."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stdout": {"class": "bridge.ops.logs.BatchingHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            # The bridge writes its own request line; gunicorn's access log stays off.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def request_id(environ: dict[str, Any] | None = None) -> str:
    """This request's id: the caller's ``X-Request-Id`` when it looks like one, else made here."""
    if environ is None:
        environ = request.environ
    ident = environ.get(_ID)
    if ident is None:
        offered = environ.get("HTTP_X_REQUEST_ID", "")
        ident = environ[_ID] = offered if _REQUEST_ID.fullmatch(offered) else entropy.token_hex(16)
    return str(ident)


def call_id(offered: str | None) -> str:
    """The id of a call whose caller offered ``offered`` (an HTTP header, gRPC metadata):
    kept when it looks like an id, else a new one."""
    return offered if offered is not None and _REQUEST_ID.fullmatch(offered) else entropy.token_hex(16)


def duration_ms(started: float) -> float:
    """Milliseconds since ``started`` (perf_counter), in whole µs: a request line's duration.

    Not round(): it formats the float through C's printf, once per request."""
    return int((time.perf_counter() - started) * 1_000_000) / 1000


def write_line(ident: str, method: str, status: int | str, started: float, details: Mapping[str, Any]) -> None:
    """A call's log line (INFO; DEBUG for probes and scrapes): its id, method, status and
    duration, then ``details`` (project, queue, http_method, path, tasks, reason, transport).
    Written by the gate for every call, HTTP or gRPC (`bridge.gate.record`)."""
    level = logging.DEBUG if method in QUIET_ENDPOINTS else logging.INFO
    if log.isEnabledFor(level):
        took = duration_ms(started)
        fields = {"request_id": ident, "method": method, "status": status, "duration_ms": took, **details}
        # makeRecord + handle: Logger.log would walk the stack to find its caller,
        # which costs more than the rest of the line.
        log.handle(log.makeRecord(log.name, level, __name__, 0, "request", (), None, extra={FIELDS: fields}))


def register(app: Flask) -> None:
    # The JSON lines carry neither thread names nor multiprocessing process names, and
    # finding them is a good part of what a LogRecord costs (the logging module's own
    # switches for this; see "Optimization" in its documentation).
    logging.logThreads = False
    logging.logMultiprocessing = False
