"""Errors a backend raises, each carrying the HTTP status and Google reason it is shown with.

    ApiError                    500 backendError  (anything unexpected)
    ├── InvalidArgument         400 invalid
    │   └── Unsupported         400 invalid       (a verb this backend cannot do)
    ├── Unauthenticated         401 required
    ├── PermissionDenied        403 forbidden
    ├── NotFound                404 notFound
    │   └── Deleted             404 notFound      (the task was deleted; its name is reserved)
    ├── Conflict                409 conflict      (lease expired or held by another worker)
    │   └── Duplicate           409 duplicate     (task name live or tombstoned)
    └── Unavailable             503 backendError  (the storage cannot be reached)

The HTTP front adds its own leaves (parse errors, missing parameters, routing) in
`bridge.errors`; it renders every one of them in Google's error envelope.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base of every error the API reports; the class decides the status and reason."""

    status = 500
    reason = "backendError"
    #: What ``location`` names: a query or path parameter, or (for credentials) a header.
    location_type = "parameter"
    #: Logged already where it entered (a backend logs an outage once, when it starts):
    #: a front logs it no more.
    reported = False

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The request parameter, body field or header at fault, when there is one.
        self.location = location


class InvalidArgument(ApiError):
    status = 400
    reason = "invalid"


class Unsupported(InvalidArgument):
    """The backend cannot do this verb or feature (see ``Backend.supports``); the message
    names it, and ``feature`` is its name there (None: an admin verb, named by the call).

    A v1 client sees a 400; a Cloud Tasks front answers UNIMPLEMENTED."""

    def __init__(self, message: str, *, feature: str | None = None, location: str | None = None) -> None:
        super().__init__(message, location=location)
        self.feature = feature


class Unauthenticated(ApiError):
    status = 401
    reason = "required"


class PermissionDenied(ApiError):
    status = 403
    reason = "forbidden"


class NotFound(ApiError):
    status = 404
    reason = "notFound"


class Deleted(NotFound):
    """The task is gone, but was there recently (its name is tombstoned)."""


class Conflict(ApiError):
    status = 409
    reason = "conflict"


class Duplicate(Conflict):
    reason = "duplicate"


class Unavailable(ApiError):
    status = 503
    reason = "backendError"

    def __init__(
        self, message: str, *, location: str | None = None, cause: str | None = None, reported: bool = False
    ) -> None:
        super().__init__(message, location=location)
        #: Why, in a few words ("connection refused at 127.0.0.1:6379"), when known.
        self.cause = cause
        self.reported = reported


#: The message of every lease-ownership conflict, whichever backend finds it.
LEASE_CONFLICT = "lease expired or held by another worker"
