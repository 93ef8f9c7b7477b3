"""Pub/Sub errors, translated into the API's where they enter, by exception class, and
the refusals of what Pub/Sub cannot do.

    google.api_core.exceptions          backends.errors
    NotFound                            NotFound 404          (the queue: no topic or subscription)
    AlreadyExists                       Duplicate 409         (create_queue)
    InvalidArgument, reason             Conflict 409          (LEASE_CONFLICT: the ack id is stale,
      EXACTLY_ONCE_ACKID_FAILURE                                acknowledged, or not a lease's)
    BadRequest (InvalidArgument,        InvalidArgument 400   (with the service's words)
      FailedPrecondition, OutOfRange)
    Unauthorized / Unauthenticated      Unauthenticated 401
    Forbidden / PermissionDenied        PermissionDenied 403  (the message names the permission)
    ServiceUnavailable, GatewayTimeout  Unavailable 503       (after the backend's retries)
      / DeadlineExceeded
    TooManyRequests / ResourceExhausted Unavailable 503
    other ServerError, Aborted,         Unavailable 503
      Cancelled
    any other GoogleAPICallError        ApiError 500
    google.auth GoogleAuthError         Unavailable 503       (credentials cannot be refreshed)

By class (and ErrorInfo's ``reason``), never by message text or ``code``, which can be None.

Refusals (`unsupported`) are Unsupported, a 400 whose message starts with "Pub/Sub" and
says what to do instead, with the feature's name from ``backends.base.FEATURES``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import google.auth.exceptions
from google.api_core import exceptions as gexc

from backends.errors import (
    LEASE_CONFLICT,
    ApiError,
    Conflict,
    Duplicate,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Unsupported,
)

#: ErrorInfo's reason when exactly-once delivery refuses ack ids; its metadata maps each
#: refused ack id to PERMANENT_FAILURE_… or TRANSIENT_FAILURE_….
ACK_ID_FAILURE = "EXACTLY_ONCE_ACKID_FAILURE"

#: What each feature Pub/Sub lacks is refused with: why, and what to do instead.
REFUSALS = {
    "named_insert": (
        "Pub/Sub cannot insert a task under a name: messages have no names, so nothing would stop a "
        "second task of the same name (no deduplication, no tombstones). Insert without an id; the "
        "answer carries the message id",
        "id",
    ),
    "delayed_insert": (
        "Pub/Sub cannot hold a task back until an ETA: a message can be pulled as soon as it is "
        "published. Insert without a leaseTimestamp ahead (delay in the worker, or keep a scheduler)",
        "leaseTimestamp",
    ),
    "get": (
        "Pub/Sub cannot read one message by id (it has no such call); lease tasks to see them",
        "task",
    ),
    "list_tasks": (
        "Pub/Sub cannot list the messages of a subscription without leasing them; lease tasks to see them",
        None,
    ),
    "delete_unleased": (
        "Pub/Sub can only delete a task through the id a lease gave it (an acknowledgement); this id "
        "names no lease, such as the message id an insert answered with",
        "task",
    ),
    "tag_lease": (
        "Pub/Sub cannot lease by tag: a subscription's filter is fixed when it is made, so groupByTag "
        "and tag leases are not available; lease without them (the tag is in each task)",
        "groupByTag",
    ),
    "long_lease": (
        "Pub/Sub holds a lease (an ack deadline) for at most 600 seconds; ask for 600 or less and "
        "renew it (update or patch) while the work goes on",
        None,
    ),
    "any_max_leases": (
        "Pub/Sub cannot keep this maxLeases (task_retry_limit): its dead-letter policy's "
        "max_delivery_attempts is 5 to 100",
        "maxLeases",
    ),
    "stats": (
        "Pub/Sub cannot count a subscription's messages (only Cloud Monitoring's "
        "num_undelivered_messages can); ask without getStats",
        "getStats",
    ),
}


def unsupported(feature: str, *, location: str | None = None, detail: str = "") -> Unsupported:
    message, default = REFUSALS[feature]
    return Unsupported(f"{message} ({detail})" if detail else message, feature=feature, location=location or default)


def missing_queue(name: str) -> NotFound:
    return NotFound(
        f"Queue not found: {name} (Pub/Sub has no topic and subscription for it; create them as "
        "MIGRATION.md shows, or let the bridge create them with create_queues=true)",
        location="taskqueue",
    )


def refused_ack_ids(exc: gexc.GoogleAPICallError) -> set[str]:
    """The ack ids exactly-once delivery refused in ``exc`` (none when it is another error)."""
    if exc.reason != ACK_ID_FAILURE:
        return set()
    return set(exc.metadata or ())


@contextlib.contextmanager
def translated(what: str, *, queue: str | None = None, fence: bool = False) -> Iterator[None]:
    """Turn Pub/Sub errors into API errors, by class; ``what`` names the call.

    ``queue``: the call needs that queue, so NOT_FOUND means it is missing. ``fence``:
    the call carried a lease's ack id, so a refused ack id means the lease is not the
    caller's (any more).
    """
    try:
        yield
    except gexc.NotFound as exc:
        raise missing_queue(queue or "?") from exc
    except gexc.AlreadyExists as exc:
        raise Duplicate(f"Pub/Sub refused {what}: {exc.message}", location="taskqueue") from exc
    except gexc.BadRequest as exc:  # InvalidArgument, FailedPrecondition, OutOfRange
        if fence and exc.reason == ACK_ID_FAILURE:
            raise Conflict(LEASE_CONFLICT, location="task") from exc
        raise InvalidArgument(f"Pub/Sub refused {what}: {exc.message}") from exc
    except gexc.Unauthorized as exc:
        raise Unauthenticated(f"Pub/Sub did not accept the bridge's credentials: {exc.message}") from exc
    except gexc.Forbidden as exc:
        raise PermissionDenied(f"Pub/Sub does not allow {what}: {exc.message}") from exc
    except (gexc.ServiceUnavailable, gexc.GatewayTimeout, gexc.DeadlineExceeded) as exc:
        raise Unavailable(f"Pub/Sub cannot be reached for {what}; try again shortly.") from exc
    except gexc.TooManyRequests as exc:
        raise Unavailable(f"Pub/Sub is over quota for {what}; try again shortly.") from exc
    except (gexc.ServerError, gexc.Aborted, gexc.Cancelled) as exc:
        raise Unavailable(f"Pub/Sub failed {what}; try again shortly.") from exc
    except gexc.GoogleAPICallError as exc:
        raise ApiError(f"Pub/Sub failed {what}.") from exc
    except google.auth.exceptions.GoogleAuthError as exc:
        raise Unavailable("The bridge cannot obtain Pub/Sub credentials now; try again shortly.") from exc
