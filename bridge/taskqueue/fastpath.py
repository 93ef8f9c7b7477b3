"""The API's methods as a table the gate answers from directly, past Flask's dispatch.

Flask stays the application: it holds the routing table (the same Discovery rules are
registered as Flask views), the error handlers, every other route, and every request
this table does not take. What answering from here skips is Flask's per-request
machinery (request and app contexts, the URL adapter, hook dispatch, the Response
object), which measured about as much as everything the bridge does itself (see
bench/README.md). Everything else a request goes through, the request id, the checks,
the log line, the metrics and the error rendering, is the gate's pipeline
(`bridge.gate.http`), the same for both ways.

A request is taken here only when its path and HTTP method name one API method
exactly: other paths, other methods (so 404, 405, HEAD and OPTIONS answer as Flask
does), paths with empty segments or a trailing slash go to Flask. The table steps aside
altogether when the app has per-request work it would skip (an app-wide hook someone
adds, a ``teardown_appcontext`` function, a receiver of Flask's request signals such as
an error reporter's ``got_request_exception``, ``SERVER_NAME`` or ``TRUSTED_HOSTS``), so
that such work is never skipped silently: it is then only slower.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from flask import Flask, signals

from bridge.taskqueue.discovery import Method

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The core of an API view: the request's WSGI environ and its path arguments in,
#: status and JSON out in parts sent one after the other (None: no body).
ApiCall = Callable[["WSGIEnvironment", Mapping[str, str]], tuple[int, list[bytes] | None]]

log = logging.getLogger("bridge.front")



class Route:
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


class FastRoutes:
    """The API's methods by HTTP method and path; see the module docstring."""

    def __init__(self, app: Flask, calls: Iterable[tuple[Method, ApiCall]]) -> None:
        self.app = app
        self.routes: dict[tuple[str, int], list[Route]] = {}
        for method, call in calls:
            route = Route(method, call)
            self.routes.setdefault((method.http_method, route.size), []).append(route)
        # Like werkzeug's router: a literal segment wins over a named one (…/tasks/lease).
        for candidates in self.routes.values():
            candidates.sort(key=lambda route: len(route.names))
        self._hooks_free: bool | None = None

    def enabled(self) -> bool:
        """Whether Flask would do nothing per request beyond what the gate does."""
        if self._hooks_free is None:
            app = self.app
            # App-wide hooks only (key None): a blueprint's hooks run for its own routes,
            # and the API's routes belong to none.
            hooks = [
                *app.before_request_funcs.get(None, ()),
                *app.after_request_funcs.get(None, ()),
                *app.teardown_request_funcs.get(None, ()),
                *app.url_value_preprocessors.get(None, ()),
                *app.teardown_appcontext_funcs,
            ]
            hosts = app.config.get("SERVER_NAME") or app.config.get("TRUSTED_HOSTS")
            self._hooks_free = not hooks and not hosts
            if not self._hooks_free:
                log.warning("the API's short way is off (per-request work it does not do: %s)", hooks or hosts)
        # Signals are connected at any time, by any extension: looked at every time
        # (written out rather than a loop or a call: it runs for every request).
        return self._hooks_free and not (
            signals.request_started.receivers
            or signals.request_finished.receivers
            or signals.got_request_exception.receivers
            or signals.request_tearing_down.receivers
            or signals.appcontext_pushed.receivers
            or signals.appcontext_tearing_down.receivers
        )

    def match(self, environ: WSGIEnvironment) -> tuple[Route, dict[str, str]] | None:
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
