"""Errors found by the HTTP front, and the one handler that renders every error.

The tree of `backends.errors`, with the classes the front adds to it (ParseError,
Required, LoginRequired, InvalidCredentials, MethodNotAllowed, BodyTooLarge, DeadlineExceeded)::

    ApiError                    500 backendError           (anything unexpected)
    ├── InvalidArgument         400 invalid
    │   ├── ParseError          400 parseError             (body is not JSON)
    │   ├── Required            400 required               (missing parameter)
    │   └── Unsupported         400 invalid                (a verb the backend cannot do)
    ├── Unauthenticated         401 required
    │   ├── LoginRequired       401 required               (no credentials)
    │   └── InvalidCredentials  401 authError              (malformed, unknown, expired, not for us)
    ├── PermissionDenied        403 forbidden
    ├── NotFound                404 notFound               (also: no such route)
    │   └── Deleted             404 notFound               (the task was deleted recently)
    ├── MethodNotAllowed        405 httpMethodNotAllowed   (a route without that verb)
    ├── Conflict                409 conflict
    │   └── Duplicate           409 duplicate
    ├── BodyTooLarge            413 requestEntityTooLarge
    ├── Unavailable             503 backendError
    └── DeadlineExceeded        504 deadlineExceeded       (the caller's deadline passed)

Status and reason come from the class alone. Flask's own errors (werkzeug's
HTTPExceptions: no route, wrong verb, Content-Length over the limit) are mapped to
these classes first, and any unexpected exception is an ApiError (500, with no
internal text), so everything reaches the client as Google's envelope. A 401 also
carries a ``WWW-Authenticate: Bearer`` challenge (RFC 6750), as Google's front end
sent; a 405 carries ``Allow``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from werkzeug import exceptions as wexc

from backends.errors import ApiError, InvalidArgument, NotFound, Unauthenticated
from bridge.ops import logs

log = logging.getLogger("bridge")


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

    def __init__(self, message: str, *, allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        #: The verbs the URL does take, for the Allow header.
        self.allow = allow


class BodyTooLarge(ApiError):
    status = 413
    reason = "requestEntityTooLarge"


class DeadlineExceeded(ApiError):
    """The caller's deadline passed (gRPC's ``grpc-timeout``) before the work was done;
    nothing more was asked of the backend."""

    status = 504
    reason = "deadlineExceeded"


def envelope(
    status: int, reason: str, message: str, location: str | None = None, location_type: str = "parameter"
) -> dict[str, object]:
    detail: dict[str, str] = {"domain": "global", "reason": reason, "message": message}
    if location:
        detail["locationType"] = location_type
        detail["location"] = location
    return {"error": {"errors": [detail], "code": status, "message": message}}


def _response(status: int, reason: str, message: str, location: str | None, location_type: str) -> Response:
    body = json.dumps(envelope(status, reason, message, location, location_type), indent=1)
    return Response(body + "\n", status=status, mimetype="application/json")


def envelope_response(exc: ApiError) -> Response:
    """``exc`` in Google's v1 envelope, with the headers its class calls for."""
    response = _response(exc.status, exc.reason, exc.message, exc.location, exc.location_type)
    if isinstance(exc, Unauthenticated):
        error = getattr(exc, "bearer_error", None)
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    if isinstance(exc, MethodNotAllowed) and exc.allow:
        response.headers["Allow"] = ", ".join(exc.allow)
    return response


def from_werkzeug(exc: wexc.HTTPException) -> ApiError:
    """The API error a werkzeug HTTPException stands for, by class."""
    if isinstance(exc, wexc.NotFound):
        return NotFound("Not Found: no such method of the taskqueue v1beta2 API")
    if isinstance(exc, wexc.MethodNotAllowed):
        return MethodNotAllowed("Method not allowed for this URL", allow=tuple(exc.valid_methods or ()))
    if isinstance(exc, wexc.RequestEntityTooLarge):
        return BodyTooLarge("Request body too large")
    if exc.code is not None and exc.code < 500:
        # Any other refusal of the request itself (werkzeug's BadRequest and kin) is the caller's.
        return InvalidArgument(exc.name)
    return ApiError(exc.name)


def as_api_error(exc: BaseException) -> ApiError:
    """The API error ``exc`` is answered with, on every front and transport: the one
    mapping. Each front renders the result in its wire format (v1's envelope, v2beta2's
    JSON error or gRPC status, the console's page).

    An ApiError is itself; werkzeug's HTTP errors map by class (`from_werkzeug`); anything
    else is a bug, logged with its traceback and answered as a bare 500 that leaks nothing.
    A 5xx is logged as a warning with its cause (a backend outage is worth a line),
    unless the backend reported it already (``reported``: Redis logs an outage once, when
    it starts, rather than once per call).
    """
    if isinstance(exc, wexc.HTTPException):
        exc = from_werkzeug(exc)
    if not isinstance(exc, ApiError):
        log.error("unexpected error", exc_info=exc)
        return ApiError("Internal error")
    if exc.status >= 500 and not exc.reported:
        log.warning("%s: %s", type(exc).__name__, exc.message, exc_info=exc.__cause__)
    return exc


def _handle(exc: Exception) -> Response:
    error = as_api_error(exc)
    request.environ[logs.REASON] = error.reason
    return envelope_response(error)


def render(exc: Exception, environ: dict[str, Any]) -> Response:
    """What the handler that `register` installs answers for ``exc``, for a request that
    Flask does not dispatch (the gate's fast way): the error reason goes into its
    ``environ``, not into whatever request context is active (a batch's, around its parts)."""
    error = as_api_error(exc)
    environ[logs.REASON] = error.reason
    return envelope_response(error)


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle)
    app.register_error_handler(wexc.HTTPException, _handle)
    app.register_error_handler(Exception, _handle)
