"""Logs: one JSON line per request, and the JSON formatter every log line goes through.

A request line carries the Discovery method id, project, queue, HTTP status, duration
and a request id, taken from the caller's ``X-Request-Id`` when it is a sane token, else
made here, and echoed in the response header so a client can quote it::

    {"time": "2026-11-28T22:30:01.123Z", "level": "INFO", "logger": "bridge.request",
     "pid": 12, "message": "request", "request_id": "5f0c…", "method": "taskqueue.tasks.lease",
     "project": "s~my-app", "queue": "render", "status": 200, "duration_ms": 1.84,
     "http_method": "POST", "path": "/taskqueue/v1beta2/…/tasks/lease"}

Never logged: bodies (payloads), the query string (``oauth_token`` and ``key`` travel
there), and headers other than the request id (``Authorization``). Health probes and
scrapes are logged at DEBUG, so that a probe every few seconds does not bury the API.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

REQUEST_ID_HEADER = "X-Request-Id"
#: A caller's request id is kept when it looks like an id; anything else is replaced,
#: so that a header cannot smuggle text or megabytes into the logs.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
#: Endpoints that probes and scrapers call every few seconds.
QUIET_ENDPOINTS = frozenset({"healthz", "readyz", "metrics"})

log = logging.getLogger("bridge.request")

#: Attributes every LogRecord has; whatever else a record carries came in ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, pid, message, and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` document: every logger, gunicorn's too, as JSON on stdout."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            # The bridge writes its own request line; gunicorn's access log stays off.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def request_id() -> str:
    """This request's id: the caller's, or one made on first use."""
    if "request_id" not in g:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
    return str(g.request_id)


def _start() -> None:
    g.log_started = time.perf_counter()
    request_id()


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    endpoint = request.endpoint or "unmatched"
    level = logging.DEBUG if endpoint in QUIET_ENDPOINTS else logging.INFO
    if log.isEnabledFor(level):
        path_args = request.view_args or {}
        started = g.get("log_started", time.perf_counter())
        log.log(
            level,
            "request",
            extra={
                "request_id": request_id(),
                "method": endpoint,
                "project": path_args.get("project"),
                "queue": path_args.get("taskqueue"),
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "http_method": request.method,
                "path": request.path,
            },
        )
    return response


def register(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
