"""Cloud Tasks errors, translated into the API's where they enter, by exception class.

    google.api_core.exceptions          backends.errors
    NotFound                            NotFound 404          (task or queue, as the call names;
                                                           Deleted when the service says it was)
    FailedPrecondition, fenced call     Conflict 409          (LEASE_CONFLICT: renew, cancel)
    AlreadyExists                       Duplicate 409
    BadRequest (InvalidArgument,        InvalidArgument 400   (with the service's words)
      FailedPrecondition, OutOfRange)
    Unauthorized / Unauthenticated      Unauthenticated 401
    Forbidden / PermissionDenied        PermissionDenied 403  (the message names the permission)
    ServiceUnavailable, GatewayTimeout  Unavailable 503       (after the backend's retries)
      / DeadlineExceeded
    TooManyRequests / ResourceExhausted Unavailable 503       (a lease makes it an empty lease first)
    MethodNotImplemented                ApiError 500          (pull queues not offered: run the smoke check)
    other ServerError, Aborted,         Unavailable 503
      Cancelled
    any other GoogleAPICallError        ApiError 500
    google.auth GoogleAuthError         Unavailable 503       (credentials cannot be refreshed)

By class, never by ``GoogleAPICallError.code``, which can be None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import google.auth.exceptions
from google.api_core import exceptions as gexc

from backends.base import Queue
from backends.errors import (
    LEASE_CONFLICT,
    ApiError,
    Conflict,
    Deleted,
    Duplicate,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

#: What Cloud Tasks says of an unknown resource (it says more of a recently deleted task).
NOT_FOUND = "Requested entity was not found."


def missing_queue(name: str) -> NotFound:
    return NotFound(
        f"Queue not found: {name} (Cloud Tasks has no such queue in this location; define it as a "
        "pull queue in queue.yaml, or let the bridge create it with create_queues=true)",
        location="taskqueue",
    )


@contextlib.contextmanager
def translated(
    what: str, *, task_id: str | None = None, queue: Queue | None = None, fence: bool = False
) -> Iterator[None]:
    """Turn Cloud Tasks errors into API errors, by class; ``what`` names the call.

    ``fence``: the call carried a lease's schedule_time, so FAILED_PRECONDITION means
    the lease is not the caller's (any more).
    """
    try:
        yield
    except gexc.NotFound as exc:
        if task_id is not None:
            # Cloud Tasks says more for a name deleted recently; pass that on.
            if exc.message == NOT_FOUND:
                raise NotFound(f"Task not found: {task_id}", location="task") from exc
            raise Deleted(f"Task not found: {task_id}. Cloud Tasks: {exc.message}", location="task") from exc
        raise missing_queue(queue.name if queue else "?") from exc
    except gexc.FailedPrecondition as exc:
        if fence:
            raise Conflict(LEASE_CONFLICT, location="task") from exc
        raise InvalidArgument(f"Cloud Tasks refused {what}: {exc.message}") from exc
    except gexc.AlreadyExists as exc:
        raise Duplicate(
            f"A task named {task_id} exists or was deleted recently; Cloud Tasks keeps names reserved "
            f"for the queue's tombstone_ttl (Cloud Tasks: {exc.message})",
            location="id",
        ) from exc
    except gexc.BadRequest as exc:  # InvalidArgument, FailedPrecondition, OutOfRange
        raise InvalidArgument(f"Cloud Tasks refused {what}: {exc.message}") from exc
    except gexc.Unauthorized as exc:
        raise Unauthenticated(f"Cloud Tasks did not accept the bridge's credentials: {exc.message}") from exc
    except gexc.Forbidden as exc:
        raise PermissionDenied(f"Cloud Tasks does not allow {what}: {exc.message}") from exc
    except (gexc.ServiceUnavailable, gexc.GatewayTimeout) as exc:
        raise Unavailable(f"Cloud Tasks cannot be reached for {what}; try again shortly.") from exc
    except gexc.TooManyRequests as exc:
        raise Unavailable(f"Cloud Tasks is over quota for {what}; try again shortly.") from exc
    except gexc.MethodNotImplemented as exc:
        raise ApiError(f"Cloud Tasks does not offer {what} here ({exc.message}); see `python -m bridge smoke`") from exc
    except (gexc.ServerError, gexc.Aborted, gexc.Cancelled) as exc:
        raise Unavailable(f"Cloud Tasks failed {what}; try again shortly.") from exc
    except gexc.GoogleAPICallError as exc:
        raise ApiError(f"Cloud Tasks failed {what}.") from exc
    except google.auth.exceptions.GoogleAuthError as exc:
        raise Unavailable("The bridge cannot obtain Cloud Tasks credentials now; try again shortly.") from exc
