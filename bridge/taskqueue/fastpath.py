"""The API's short way through the app: a WSGI layer that answers the v1beta2 methods.

Flask stays the application: it holds the routing table (the same Discovery rules are
registered as Flask views), the error handlers, every other route, and every request
this layer does not take. What this layer skips is Flask's per-request machinery
(request and app contexts, the URL adapter, hook dispatch, the Response object), which
measured about as much as everything the bridge does itself (see bench/README.md):
for a request whose path and HTTP method name one API method exactly, it runs the same
view core, the same error rendering, request log line, metrics and request id as the
Flask path does.

Anything it is unsure of goes to Flask untouched: other paths, other methods (so 404,
405, HEAD and OPTIONS answer as before), paths with empty segments or a trailing slash.
It steps aside altogether when the app has per-request work it does not know of (an
app-wide ``before_request`` hook someone adds, ``SERVER_NAME`` or ``TRUSTED_HOSTS``), so
that such work is never skipped silently: it is then only slower. The app's checks of
a request (`checks`: before_request hooks that take the WSGI environ when called with
it, as the Host check does) it runs itself, first, as Flask would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from flask import Flask, Request
from werkzeug.http import HTTP_STATUS_CODES

from bridge import errors
from bridge.ops import logs, metrics
from bridge.taskqueue.discovery import Method

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: The core of an API view: the request and its path arguments in, status and JSON out
#: in parts sent one after the other (None: no body).
ApiCall = Callable[[Request, Mapping[str, str]], tuple[int, list[bytes] | None]]
#: A before_request hook that also takes the request's WSGI environ.
Check = Callable[["WSGIEnvironment"], None]

log = logging.getLogger("bridge.front")

#: The per-request hooks this layer performs itself (logs and metrics register them).
_KNOWN_HOOKS = frozenset({logs._start, logs._finish, metrics._start, metrics._finish})
_STATUS_LINES: dict[int, str] = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}
#: What werkzeug sends with an empty Response (204), kept so both ways answer alike.
_EMPTY_TYPE = "text/html; charset=utf-8"


class _Route:
    """One API method's URL rule, split at '/': literal segments and named ones."""

    def __init__(self, method: Method, call: ApiCall) -> None:
        self.id = method.id
        self.call = call
        segments = method.rule.split("/")
        self.size = len(segments)
        self.literals = tuple((i, s) for i, s in enumerate(segments) if not s.startswith("<"))
        self.names = tuple((i, s[1:-1]) for i, s in enumerate(segments) if s.startswith("<"))

    def match(self, segments: list[str]) -> dict[str, str] | None:
        for i, literal in self.literals:
            if segments[i] != literal:
                return None
        args = {}
        for i, name in self.names:
            if not segments[i]:
                return None
            args[name] = segments[i]
        return args


class ApiFront:
    """WSGI middleware over Flask's ``wsgi_app``; see the module docstring."""

    def __init__(
        self,
        app: Flask,
        calls: Iterable[tuple[Method, ApiCall]],
        max_body_bytes: int,
        checks: Sequence[Check] = (),
    ) -> None:
        self.app = app
        self.checks = tuple(checks)
        self.flask = app.wsgi_app
        self.max_body_bytes = max_body_bytes
        self.routes: dict[tuple[str, int], list[_Route]] = {}
        for method, call in calls:
            route = _Route(method, call)
            self.routes.setdefault((method.http_method, route.size), []).append(route)
        # Like werkzeug's router: a literal segment wins over a named one (…/tasks/lease).
        for candidates in self.routes.values():
            candidates.sort(key=lambda route: len(route.names))
        self._enabled: bool | None = None

    def enabled(self) -> bool:
        """Whether Flask would do nothing per request beyond what this layer does."""
        if self._enabled is None:
            app = self.app
            # App-wide hooks only (key None): a blueprint's hooks run for its own routes,
            # and the API's routes belong to none.
            hooks = [
                *app.before_request_funcs.get(None, ()),
                *app.after_request_funcs.get(None, ()),
                *app.teardown_request_funcs.get(None, ()),
                *app.url_value_preprocessors.get(None, ()),
            ]
            unknown = [f for f in hooks if f not in _KNOWN_HOOKS and f not in self.checks]
            hosts = app.config.get("SERVER_NAME") or app.config.get("TRUSTED_HOSTS")
            self._enabled = not unknown and not hosts
            if not self._enabled:
                log.warning("the API's short way is off (per-request work it does not do: %s)", unknown or hosts)
        return self._enabled

    def match(self, environ: WSGIEnvironment) -> tuple[_Route, dict[str, str]] | None:
        path = environ.get("PATH_INFO", "")
        segments = path.split("/")
        candidates = self.routes.get((environ["REQUEST_METHOD"], len(segments)))
        if not candidates or not self.enabled():
            return None
        # As werkzeug reads PATH_INFO: WSGI's latin-1 string back to bytes, then UTF-8.
        if not path.isascii():
            segments = path.encode("latin-1").decode("utf-8", "replace").split("/")
        for route in candidates:
            args = route.match(segments)
            if args is not None:
                return route, args
        return None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = self.match(environ)
        if found is None:
            return self.flask(environ, start_response)
        route, args = found
        started = time.perf_counter()
        ident = logs.request_id(environ)
        req = self.app.request_class(environ)
        req.max_content_length = self.max_body_bytes
        try:
            for check in self.checks:
                check(environ)
            status, body = route.call(req, args)
        except Exception as exc:  # noqa: BLE001 - rendered as Flask's handlers render it
            response = errors.render(exc, environ)
            response.headers[logs.REQUEST_ID_HEADER] = ident
            status, body = response.status_code, None
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
        logs.write_line(environ, ident, route.id, args, status, started, environ["REQUEST_METHOD"], req.path)
        metrics.count_request(route.id, status, started)
        return result
