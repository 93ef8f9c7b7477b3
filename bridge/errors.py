"""Errors found by the HTTP front, and the one handler that renders every error.

The front adds these leaves to the tree of `backends.errors`::

    ApiError
    ├── InvalidArgument         400 invalid
    │   ├── ParseError          400 parseError             (body is not JSON)
    │   └── Required            400 required               (missing parameter)
    ├── MethodNotAllowed        405 httpMethodNotAllowed
    └── BodyTooLarge            413 requestEntityTooLarge

Everything reaches the client as Google's envelope; Flask's own 404 and 405, and any
unexpected exception (500, with no internal text), included.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from backends.errors import ApiError, InvalidArgument

log = logging.getLogger("bridge")

_REASONS = {
    400: "invalid",
    401: "required",
    403: "forbidden",
    404: "notFound",
    405: "httpMethodNotAllowed",
    409: "conflict",
    413: "requestEntityTooLarge",
}


class ParseError(InvalidArgument):
    reason = "parseError"


class Required(InvalidArgument):
    reason = "required"


class MethodNotAllowed(ApiError):
    status = 405
    reason = "httpMethodNotAllowed"


class BodyTooLarge(ApiError):
    status = 413
    reason = "requestEntityTooLarge"


def envelope(status: int, reason: str, message: str, location: str | None = None) -> dict[str, object]:
    detail: dict[str, str] = {"domain": "global", "reason": reason, "message": message}
    if location:
        detail["locationType"] = "parameter"
        detail["location"] = location
    return {"error": {"errors": [detail], "code": status, "message": message}}


def error_response(status: int, reason: str, message: str, location: str | None = None) -> Response:
    body = json.dumps(envelope(status, reason, message, location), indent=1)
    return Response(body + "\n", status=status, mimetype="application/json")


def _api_error(exc: ApiError) -> Response:
    if exc.status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message, exc_info=exc.__cause__)
    return error_response(exc.status, exc.reason, exc.message, exc.location)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    reason = _REASONS.get(status, "backendError")
    if status == 404:
        message = "Not Found: no such method of the taskqueue v1beta2 API"
    elif status == 405:
        message = "Method not allowed for this URL"
    elif status == 413:
        message = "Request body too large"
    else:
        message = exc.name
    response = error_response(status, reason, message)
    if status == 405 and exc.get_headers():
        allow = dict(exc.get_headers()).get("Allow")
        if allow:
            response.headers["Allow"] = allow
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error")
    return error_response(500, "backendError", "Internal error")


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
