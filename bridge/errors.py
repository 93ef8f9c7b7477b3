"""Errors found by the HTTP front, and the one handler that renders every error.

The front adds these leaves to the tree of `backends.errors`::

    ApiError
    ├── InvalidArgument         400 invalid
    │   ├── ParseError          400 parseError             (body is not JSON)
    │   └── Required            400 required               (missing parameter)
    ├── Unauthenticated         401 required
    │   ├── LoginRequired       401 required               (no credentials)
    │   └── InvalidCredentials  401 authError              (malformed, unknown, expired, not for us)
    ├── MethodNotAllowed        405 httpMethodNotAllowed
    └── BodyTooLarge            413 requestEntityTooLarge

Everything reaches the client as Google's envelope; Flask's own 404 and 405, and any
unexpected exception (500, with no internal text), included. A 401 also carries a
``WWW-Authenticate: Bearer`` challenge (RFC 6750), as Google's front end sent.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, has_request_context, json, request
from werkzeug.exceptions import HTTPException

from backends.errors import ApiError, InvalidArgument, Unauthenticated
from bridge import logs

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


class LoginRequired(Unauthenticated):
    """No credentials at all; Google said "Login Required" with reason ``required``."""

    location_type = "header"

    def __init__(self, message: str = "Login Required") -> None:
        super().__init__(message, location="Authorization")


class InvalidCredentials(Unauthenticated):
    """Credentials that are malformed, unknown, expired or meant for someone else.

    Google answered these with reason ``authError`` and "Invalid Credentials"; the
    detail after it says what was wrong with the credential, never who holds which.
    """

    reason = "authError"
    location_type = "header"

    def __init__(self, detail: str, *, bearer_error: str = "invalid_token") -> None:
        super().__init__(f"Invalid Credentials: {detail}", location="Authorization")
        #: The RFC 6750 error code of the challenge: invalid_token or invalid_request.
        self.bearer_error = bearer_error


#: The realm of every WWW-Authenticate challenge.
REALM = "taskqueue"


class MethodNotAllowed(ApiError):
    status = 405
    reason = "httpMethodNotAllowed"


class BodyTooLarge(ApiError):
    status = 413
    reason = "requestEntityTooLarge"


def envelope(
    status: int, reason: str, message: str, location: str | None = None, location_type: str = "parameter"
) -> dict[str, object]:
    detail: dict[str, str] = {"domain": "global", "reason": reason, "message": message}
    if location:
        detail["locationType"] = location_type
        detail["location"] = location
    return {"error": {"errors": [detail], "code": status, "message": message}}


def error_response(
    status: int, reason: str, message: str, location: str | None = None, location_type: str = "parameter"
) -> Response:
    body = json.dumps(envelope(status, reason, message, location, location_type), indent=1)
    if has_request_context():
        request.environ[logs.REASON] = reason
    return Response(body + "\n", status=status, mimetype="application/json")


def _api_error(exc: ApiError) -> Response:
    if exc.status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message, exc_info=exc.__cause__)
    response = error_response(exc.status, exc.reason, exc.message, exc.location, exc.location_type)
    if isinstance(exc, Unauthenticated):
        error = getattr(exc, "bearer_error", None)
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return response


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
