"""The gate's HTTP pipeline: the one WSGI layer every HTTP request passes, outermost.

For each request, in order::

    request id      the caller's X-Request-Id when sane, else a new one; echoed in the answer
    checks          the Host header and query string (`bridge.gate.head`), the cross-site policy
                    (`bridge.gate.crosssite`), the method override; a refusal is rendered
                    in the format of the surface the path belongs to
    answer          a v1 API method straight from its table (`bridge.taskqueue.fastpath`),
                    anything else by Flask (every other route, and its error handlers)
    log and count   one log line and the request's counts (`bridge.gate.record`), with the
                    method id (the route's endpoint, or the one a view names), the status,
                    the tasks handed out and the error's reason

Batch parts are requests too: the batch view sends each through this layer
(``current_app.wsgi_app``), so a part is checked, answered, logged and counted as if it
had come alone. The gRPC transport ends its calls in `bridge.gate.record` as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from backends.errors import ApiError
from bridge import errors
from bridge.gate import record
from bridge.ops import logs

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from bridge.taskqueue.fastpath import FastRoutes

#: A check of a request before it is answered: raises an ApiError to refuse it. It may
#: also rewrite the environ (the method override does).
Check = Callable[["WSGIEnvironment"], None]
#: Where a request carries checks of its own, run after the app's (a batch part: what a
#: part may call).
CHECKS_KEY = "bridge.checks"
#: How a surface renders a refusal, in its own wire format.
Renderer = Callable[[ApiError], Response]

_STATUS_LINES: dict[int, str] = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}
#: What werkzeug sends with an empty Response (204), kept so both ways answer alike.
_EMPTY_TYPE = "text/html; charset=utf-8"


class HttpGate:
    """WSGI middleware over Flask's own ``wsgi_app``; see the module docstring.

    ``renderers``: (path prefix, renderer) of the surfaces whose errors are not Google's
    v1 envelope (the longest prefix wins); ``fast``: the API methods answered past Flask.
    """

    def __init__(
        self,
        app: Flask,
        checks: Sequence[Check],
        fast: FastRoutes | None = None,
        renderers: Sequence[tuple[str, Renderer]] = (),
    ) -> None:
        self.app = app
        self.flask = app.wsgi_app
        # So that the log line can name the route Flask dispatched to (Flask unlinks its
        # own "werkzeug.request" when the request ends).
        app.request_class = _Request
        self.checks = tuple(checks)
        self.fast = fast
        self.renderers = sorted(renderers, key=lambda item: -len(item[0]))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        ident = logs.request_id(environ)
        try:
            for check in self.checks:
                check(environ)
            own = environ.get(CHECKS_KEY)
            if own is not None:
                for check in own:
                    check(environ)
        except Exception as exc:  # noqa: BLE001 - rendered in the surface's format
            return self._refused(exc, environ, start_response, ident, started)
        found = self.fast.match(environ) if self.fast is not None else None
        if found is None:
            return self._flask(environ, start_response, ident, started)
        # The API's methods, past Flask (bridge.taskqueue.fastpath): the hot path, kept inline.
        route, args = found
        try:
            status, body = route.call(environ, args)
        except Exception as exc:  # noqa: BLE001 - rendered as Flask's handlers render it
            response = errors.render(exc, environ)
            response.headers[logs.REQUEST_ID_HEADER] = ident
            status = response.status_code
            result: Iterable[bytes] = response(environ, start_response)
        else:
            if body is None:
                headers = [("Content-Type", _EMPTY_TYPE), (logs.REQUEST_ID_HEADER, ident)]
                result = []
            else:
                headers = [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(sum(map(len, body)))),
                    (logs.REQUEST_ID_HEADER, ident),
                ]
                result = body
            start_response(_STATUS_LINES[status], headers)
        path = environ.get("PATH_INFO", "")
        details = {
            "project": args.get("project"),
            "queue": args.get("taskqueue"),
            "http_method": environ["REQUEST_METHOD"],
            "path": path if path.isascii() else _path(environ),
        }
        if logs.TASKS in environ:
            details["tasks"] = environ[logs.TASKS]
        if logs.REASON in environ:
            details["reason"] = environ[logs.REASON]
        record.finish(ident, route.id, status, started, details)
        return result

    def _flask(
        self, environ: WSGIEnvironment, start_response: StartResponse, ident: str, started: float
    ) -> Iterable[bytes]:
        answered: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered.append(status)
            headers.append((logs.REQUEST_ID_HEADER, ident))
            return start_response(status, headers, exc_info)

        result = self.flask(environ, start)
        req = environ.pop(_REQUEST, None)
        args = (req.view_args if req is not None else None) or {}
        method = environ.get(logs.METHOD) or (req.endpoint if req is not None else None) or "unmatched"
        details = {
            "project": args.get("project"),
            "queue": args.get("taskqueue"),
            "http_method": environ["REQUEST_METHOD"],
            "path": req.path if req is not None else _path(environ),
        }
        _outcome(environ, details)
        record.finish(ident, method, int(answered[0][:3]), started, details)
        return result

    def _refused(
        self, exc: Exception, environ: WSGIEnvironment, start_response: StartResponse, ident: str, started: float
    ) -> Iterable[bytes]:
        error = errors.as_api_error(exc)
        path = _path(environ)
        render = next((render for prefix, render in self.renderers if path.startswith(prefix)), None)
        response = (render or errors.envelope_response)(error)
        response.headers[logs.REQUEST_ID_HEADER] = ident
        environ[logs.REASON] = error.reason
        details = {"project": None, "queue": None, "http_method": environ.get("REQUEST_METHOD"), "path": path}
        _outcome(environ, details)
        record.finish(ident, self._endpoint(environ), response.status_code, started, details)
        return response(environ, start_response)

    def _endpoint(self, environ: WSGIEnvironment) -> str:
        """The method a refused request was for, as its log line and counts name it."""
        found = self.fast.match(environ) if self.fast is not None else None
        if found is not None:
            return found[0].id
        try:
            endpoint, _ = self.app.url_map.bind_to_environ(environ).match()
        except (HTTPException, ValueError):
            return "unmatched"
        return str(endpoint)


#: Where a request object leaves itself in its environ.
_REQUEST = "bridge.request"


class _Request(Request):
    """Flask's request, which leaves itself in its environ for the pipeline to read once
    Flask is done with it (the pipeline takes it out again: no cycle is left)."""

    def __init__(self, environ: WSGIEnvironment, populate_request: bool = True, shallow: bool = False) -> None:
        super().__init__(environ, populate_request, shallow)
        environ[_REQUEST] = self


def _path(environ: WSGIEnvironment) -> str:
    """The request's path as werkzeug reads PATH_INFO: WSGI's latin-1 string back to bytes, then UTF-8."""
    path: str = environ.get("PATH_INFO", "")
    return path if path.isascii() else path.encode("latin-1").decode("utf-8", "replace")


def _outcome(environ: WSGIEnvironment, details: dict[str, Any]) -> None:
    """What the view and the error handler left for the log line: tasks handed out, the
    error's reason."""
    if logs.TASKS in environ:
        details["tasks"] = environ[logs.TASKS]
    if logs.REASON in environ:
        details["reason"] = environ[logs.REASON]
