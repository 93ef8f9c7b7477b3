"""Logs: one JSON line per request, and the JSON formatter every log line goes through.

A request line carries the Discovery method id, project, queue, HTTP status, duration,
the number of tasks a lease or list handed out, the error reason of a refusal, and a
request id, taken from the caller's ``X-Request-Id`` when it is a sane token, else made
here, and echoed in the response header so a client can quote it::

    {"time": "2026-11-28T22:30:01.123Z", "level": "INFO", "logger": "bridge.request",
     "pid": 12, "message": "request", "request_id": "5f0c…", "method": "taskqueue.tasks.lease",
     "project": "s~my-app", "queue": "render", "status": 200, "duration_ms": 1.84,
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
from flask import Flask, Response, request

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
#: Where a request's id and start time are kept, in its WSGI environ.
_ID = "bridge.request_id"
_STARTED = "bridge.log_started"
#: Where the API view and the error handler leave what the request line reports.
TASKS = "bridge.log_tasks"
REASON = "bridge.log_reason"

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


def duration_ms(started: float) -> float:
    """Milliseconds since ``started`` (perf_counter), in whole µs: a request line's duration.

    Not round(): it formats the float through C's printf, once per request."""
    return int((time.perf_counter() - started) * 1_000_000) / 1000


def write_line(
    environ: Mapping[str, Any],
    ident: str,
    endpoint: str,
    path_args: Mapping[str, Any],
    status: int,
    started: float,
    http_method: str,
    path: str,
) -> None:
    """The request's log line (INFO; DEBUG for probes and scrapes); ``environ`` is the
    request's WSGI environ, where the view and the error handler leave `TASKS` and `REASON`."""
    level = logging.DEBUG if endpoint in QUIET_ENDPOINTS else logging.INFO
    if log.isEnabledFor(level):
        fields = {
            "request_id": ident,
            "method": endpoint,
            "project": path_args.get("project"),
            "queue": path_args.get("taskqueue"),
            "status": status,
            "duration_ms": duration_ms(started),
            "http_method": http_method,
            "path": path,
        }
        if TASKS in environ:
            fields["tasks"] = environ[TASKS]
        if REASON in environ:
            fields["reason"] = environ[REASON]
        # makeRecord + handle: Logger.log would walk the stack to find its caller,
        # which costs more than the rest of the line.
        log.handle(log.makeRecord(log.name, level, __name__, 0, "request", (), None, extra={FIELDS: fields}))


# The hooks below run on every request that Flask dispatches (the API's methods take
# `bridge.taskqueue.fastpath`'s shorter way and call the functions above themselves): they reach the
# request through one context lookup and keep their state in its WSGI environ, because
# each access through Flask's proxies (request, g) costs about as much as a dict update.


def _start() -> None:
    environ = request.environ
    request_id(environ)
    environ[_STARTED] = time.perf_counter()


def _finish(response: Response) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    ident = request_id(environ)
    response.headers[REQUEST_ID_HEADER] = ident
    started = environ.get(_STARTED) or time.perf_counter()
    write_line(
        environ,
        ident,
        req.endpoint or "unmatched",
        req.view_args or {},
        response.status_code,
        started,
        req.method,
        req.path,
    )
    return response


def register(app: Flask) -> None:
    # The JSON lines carry neither thread names nor multiprocessing process names, and
    # finding them is a good part of what a LogRecord costs (the logging module's own
    # switches for this; see "Optimization" in its documentation).
    logging.logThreads = False
    logging.logMultiprocessing = False
    app.before_request(_start)
    app.after_request(_finish)
