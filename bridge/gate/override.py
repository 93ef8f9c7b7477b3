"""X-HTTP-Method-Override on POST, as Google's front end honoured it, for every HTTP request.

Google's Python client tunnels PATCH and long GETs through POST; a long GET's query
string moves into a form-encoded body, which becomes the query string again here,
whole, and under the same size limit as any other body. A check of the gate's HTTP
pipeline (`bridge.gate.http`): it rewrites the request before it is routed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.errors import InvalidArgument
from bridge.errors import BodyTooLarge
from bridge.gate.bodies import body_errors, read_limited

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

_OVERRIDABLE = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class MethodOverride:
    """The rewrite as a check; ``limit`` is the body limit (--max-body-bytes)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, environ: WSGIEnvironment) -> None:
        override = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE")
        if override is None or environ["REQUEST_METHOD"] != "POST" or override.upper() not in _OVERRIDABLE:
            return
        override = override.upper()
        environ["REQUEST_METHOD"] = override
        form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        if override == "GET" and form:
            extra = self._form(environ)
            environ["QUERY_STRING"] = "&".join(part for part in (environ.get("QUERY_STRING", ""), extra) if part)
            environ["CONTENT_LENGTH"] = "0"

    def _form(self, environ: WSGIEnvironment) -> str:
        length = environ.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:
                raise InvalidArgument("Content-Length is not a number", location="Content-Length") from None
            if size > self.limit:
                raise BodyTooLarge("Request body too large")
            with body_errors():
                data = environ["wsgi.input"].read(size)
        elif environ.get("wsgi.input_terminated"):
            data = read_limited(environ["wsgi.input"], self.limit)
        else:
            data = b""
        return bytes(data).decode("latin-1")
