"""Cloud Tasks errors become the API's errors, by class, and idempotent calls are retried."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from backends import errors
from backends.base import LeaseRequest, NewTask, Queue
from backends.cloudtasks.backend import CloudTasksBackend
from backends.cloudtasks.errors import translated
from bridge import create_app
from bridge.settings import Settings
from tests.support.api import PROJECT, QUEUE, insert
from tests.support.cloudtasks_fake import FakeCloudTasks
from tests.support.http import error_of, serving

pytestmark = pytest.mark.cloudtasks

WORK = Queue("demo-app", "work")
LEASE = LeaseRequest(num_tasks=10, lease_us=60_000_000)


@pytest.mark.parametrize(
    "error, status, reason",
    [
        (gexc.NotFound, 404, "notFound"),
        (gexc.AlreadyExists, 409, "duplicate"),
        (gexc.InvalidArgument, 400, "invalid"),
        (gexc.FailedPrecondition, 400, "invalid"),
        (gexc.OutOfRange, 400, "invalid"),
        (gexc.PermissionDenied, 403, "forbidden"),
        (gexc.Unauthenticated, 401, "required"),
        (gexc.ServiceUnavailable, 503, "backendError"),
        (gexc.DeadlineExceeded, 503, "backendError"),
        (gexc.ResourceExhausted, 503, "backendError"),
        (gexc.InternalServerError, 503, "backendError"),
        (gexc.Aborted, 503, "backendError"),
        (gexc.MethodNotImplemented, 500, "backendError"),
        (gexc.GoogleAPICallError, 500, "backendError"),
    ],
)
def test_each_error_class_has_its_status_and_reason_even_without_a_code(
    error: type[gexc.GoogleAPICallError], status: int, reason: str
) -> None:
    raised = error("from the service")
    if error is gexc.GoogleAPICallError:
        assert raised.code is None  # mapped by class, never by code
    with pytest.raises(errors.ApiError) as caught, translated("the call", task_id="t1", queue=WORK):
        raise raised
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert caught.value.__cause__ is raised


def test_failed_precondition_on_a_fenced_call_is_the_lease_conflict() -> None:
    with pytest.raises(errors.Conflict) as caught, translated("the lease change", task_id="t1", fence=True):
        raise gexc.FailedPrecondition("schedule_time does not match")
    assert (caught.value.status, caught.value.reason, caught.value.message) == (409, "conflict", errors.LEASE_CONFLICT)


@pytest.mark.parametrize(
    "error, status, reason",
    [
        (gexc.InvalidArgument, 400, "invalid"),
        (gexc.PermissionDenied, 403, "forbidden"),
        (gexc.Unauthenticated, 401, "required"),
        (gexc.NotFound, 404, "notFound"),
        (gexc.InternalServerError, 503, "backendError"),
    ],
)
def test_the_bridge_shows_an_injected_error_in_googles_envelope(
    fake: FakeCloudTasks, ct: CloudTasksBackend, error: type[gexc.GoogleAPICallError], status: int, reason: str
) -> None:
    with serving(create_app(Settings(), backend=ct)) as server:
        api = server.api()
        insert(api, project="demo-app", id="t1")
        fake.fail(error, methods=["GetTask"])
        envelope = error_of(api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1"), status, reason)
        assert "injected" not in envelope["error"]["message"] or status < 500


def test_idempotent_calls_are_retried_and_answer_503_when_every_attempt_fails(
    fake: FakeCloudTasks, ct: CloudTasksBackend
) -> None:
    ct.insert(WORK, NewTask("t1", b"x"))
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("GetTask", lambda: ct.get(WORK, "t1")),
        ("ListTasks", lambda: ct.list_tasks(WORK)),
        ("GetQueue", lambda: ct.queue_info(WORK, with_stats=True)),
        ("ListQueues", ct.ping),
        ("CreateTask", lambda: ct.insert(WORK, NewTask("t2", b"y"))),
        ("DeleteTask", lambda: ct.delete(WORK, "t1")),
    ]
    for method, call in calls:
        for error in (gexc.ServiceUnavailable, gexc.DeadlineExceeded):
            fake.calls.clear()
            fake.fail(error, times=3, methods=[method])
            with pytest.raises(errors.Unavailable):
                call()
            assert fake.calls == [method] * 3, (method, error)
        fake.calls.clear()
        fake.fail(gexc.ServiceUnavailable, times=2, methods=[method])
        call()
        assert fake.calls == [method] * 3


@pytest.mark.parametrize("method", ["LeaseTasks", "RenewLease", "CancelLease"])
def test_lease_renew_and_cancel_are_not_retried(fake: FakeCloudTasks, ct: CloudTasksBackend, method: str) -> None:
    ct.insert(WORK, NewTask("t1", b"x"))
    [task] = ct.lease(WORK, LeaseRequest(num_tasks=1, lease_us=60_000_000))
    fake.calls.clear()
    fake.fail(gexc.ServiceUnavailable, methods=[method])
    with pytest.raises(errors.Unavailable):
        if method == "LeaseTasks":
            ct.lease(WORK, LEASE)
        else:
            ct.modify_lease(WORK, "t1", 0 if method == "CancelLease" else 60_000_000, task.eta_us)
    assert fake.calls == [method]


def test_a_create_whose_reply_was_lost_succeeds_on_its_retry(fake: FakeCloudTasks, ct: CloudTasksBackend) -> None:
    ct.queue_info(WORK, with_stats=False)  # creates the queue
    fake.calls.clear()
    fake.fail(gexc.DeadlineExceeded, after=True, methods=["CreateTask"])
    task = ct.insert(WORK, NewTask("t1", b"mine", "red"))
    assert (task.id, task.payload, task.tag, task.retry_count) == ("t1", b"mine", "red", 0)
    # The retry meets ALREADY_EXISTS, reads the task and finds it is the one it sent.
    assert fake.calls == ["CreateTask", "CreateTask", "GetTask"]
    assert [t.id for t in ct.list_tasks(WORK)] == ["t1"]


def test_a_retried_create_that_meets_another_callers_task_is_a_duplicate(
    fake: FakeCloudTasks, ct: CloudTasksBackend
) -> None:
    ct.insert(WORK, NewTask("t1", b"theirs"))
    fake.fail(gexc.ServiceUnavailable, methods=["CreateTask"])
    with pytest.raises(errors.Duplicate):
        ct.insert(WORK, NewTask("t1", b"mine"))
    assert ct.get(WORK, "t1").payload == b"theirs"


def test_a_delete_whose_reply_was_lost_succeeds_on_its_retry(fake: FakeCloudTasks, ct: CloudTasksBackend) -> None:
    ct.insert(WORK, NewTask("t1", b"x"))
    fake.fail(gexc.DeadlineExceeded, after=True, methods=["DeleteTask"])
    ct.delete(WORK, "t1")
    with pytest.raises(errors.NotFound):
        ct.get(WORK, "t1")


def test_resource_exhausted_on_lease_is_an_empty_lease(fake: FakeCloudTasks, ct: CloudTasksBackend) -> None:
    ct.insert(WORK, NewTask("t1", b"x"))
    fake.fail(gexc.ResourceExhausted, methods=["LeaseTasks"])
    assert ct.lease(WORK, LEASE) == []
    assert [task.id for task in ct.lease(WORK, LEASE)] == ["t1"]


def test_past_10_leases_a_second_the_bridge_leases_nothing_as_app_engine_did(
    fake: FakeCloudTasks, ct: CloudTasksBackend
) -> None:
    fake.clock.freeze()
    ct.insert(WORK, NewTask("t1", b"x"))
    results = [ct.lease(WORK, LeaseRequest(num_tasks=1, lease_us=0)) for _ in range(11)]
    assert all(len(result) == 1 for result in results[:10]) and results[10] == []
    fake.advance(1)
    assert len(ct.lease(WORK, LEASE)) == 1


def test_a_throttled_lease_is_logged_with_its_queue_and_counted_in_metrics(
    fake: FakeCloudTasks, ct: CloudTasksBackend, caplog: pytest.LogCaptureFixture
) -> None:
    def throttled() -> float:
        with serving(create_app(Settings(), backend=ct)) as server:
            text = server.request("GET", "/metrics").body.decode()
        wanted = 'bridge_cloudtasks_leases_throttled_total{project="demo-app",queue="work"} '
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted))

    before = throttled()
    fake.fail(gexc.ResourceExhausted, methods=["LeaseTasks"])
    with caplog.at_level("INFO", logger="bridge.cloudtasks"):
        assert ct.lease(WORK, LEASE) == []
    assert any("queues/work" in record.getMessage() and "throttled" in record.getMessage() for record in caplog.records)
    assert throttled() == before + 1


def test_resource_exhausted_elsewhere_is_a_503(fake: FakeCloudTasks, ct: CloudTasksBackend) -> None:
    fake.fail(gexc.ResourceExhausted, methods=["CreateTask"])
    with pytest.raises(errors.Unavailable):
        ct.insert(WORK, NewTask("t1", b"x"))


def test_a_stale_or_expired_token_on_renew_or_cancel_is_the_lease_conflict(
    fake: FakeCloudTasks, ct: CloudTasksBackend
) -> None:
    ct.insert(WORK, NewTask("t1", b"x"))
    [task] = ct.lease(WORK, LEASE)
    for lease_us in (0, 60_000_000):
        with pytest.raises(errors.Conflict) as caught:
            ct.modify_lease(WORK, "t1", lease_us, task.eta_us - 1)
        assert caught.value.message == errors.LEASE_CONFLICT
    fake.advance(61)
    with pytest.raises(errors.Conflict):
        ct.modify_lease(WORK, "t1", 0, task.eta_us)


def test_a_lease_on_a_queue_paused_in_cloud_tasks_leases_nothing(fake: FakeCloudTasks, ct: CloudTasksBackend) -> None:
    ct.insert(WORK, NewTask("t1", b"x"))
    ct.client.pause_queue(name="projects/demo-app/locations/us-central1/queues/work", retry=None)
    # LeaseTasks answers FAILED_PRECONDITION; a paused v1 queue leases nothing, as on Redis.
    assert ct.lease(WORK, LEASE) == []
    assert "LeaseTasks" in fake.calls
    assert ct.queue_info(WORK, with_stats=False).paused


def test_a_schedule_time_too_far_ahead_is_blamed_on_lease_timestamp(ct: CloudTasksBackend) -> None:
    ct.insert(WORK, NewTask("t0", b"x"))
    too_far = ct.get(WORK, "t0").eta_us + 31 * 24 * 3600 * 1_000_000
    with pytest.raises(errors.InvalidArgument) as caught:
        ct.insert(WORK, NewTask("t1", b"x", eta_us=too_far))
    assert caught.value.location == "leaseTimestamp" and "30 days" in caught.value.message
