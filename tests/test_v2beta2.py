"""Cloud Tasks v2beta2 pull queues, the same checks on the strict fake and on the bridge's front.

Each test runs on the fake (gRPC) and on the front over gRPC and HTTP/JSON, on memory,
Redis and Redis Cluster, always through the official google-cloud-tasks client: what the
fake demands of the service, the front does, and the other way round.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from tests.support.v2beta2 import LOCATION, Target, refused

FULL = ct.Task.View.FULL
BASIC = ct.Task.View.BASIC
Code = grpc.StatusCode
US = 1_000_000


def _pb(message: Any) -> Any:
    return type(message).pb(message)


def _us(stamp: timestamp_pb2.Timestamp) -> int:
    return int(stamp.seconds) * US + int(stamp.nanos) // 1000


def _stamp(task: Any) -> timestamp_pb2.Timestamp:
    """The task's schedule_time, exact to the nanosecond, as a renew must send it."""
    return _pb(task).schedule_time


def _create(v2: Target, queue: str, task_id: str = "", payload: bytes = b"body", tag: str = "", **fields: Any) -> Any:
    task = ct.Task(pull_message=ct.PullMessage(payload=payload, tag=tag), **fields)
    if task_id:
        task.name = f"{queue}/tasks/{task_id}"
    return v2.client.create_task(parent=queue, task=task, retry=None)


def _lease(
    v2: Target, queue: str, seconds: int = 60, max_tasks: int = 10, task_filter: str = "", view: Any = FULL
) -> list[Any]:
    request = ct.LeaseTasksRequest(
        parent=queue,
        max_tasks=max_tasks,
        lease_duration=duration_pb2.Duration(seconds=seconds),
        response_view=view,
        filter=task_filter,
    )
    return list(v2.client.lease_tasks(request=request, retry=None).tasks)


def _renew(v2: Target, task: Any, seconds: int = 60, stamp: Any = None) -> Any:
    request = ct.RenewLeaseRequest(
        name=task.name, schedule_time=stamp or _stamp(task), lease_duration=duration_pb2.Duration(seconds=seconds)
    )
    return v2.client.renew_lease(request=request, retry=None)


def _name(task: Any) -> str:
    return str(task.name.rsplit("/", 1)[1])


def test_basic_views_carry_no_payload_and_full_views_do(v2: Target) -> None:
    queue = v2.queue()
    created = _create(v2, queue, "t1", payload=b"secret", tag="red")
    assert created.view == BASIC and created.pull_message.payload == b""
    assert created.pull_message.tag == "red" and created.name == f"{queue}/tasks/t1"
    get = v2.client.get_task
    assert get(name=created.name, retry=None).pull_message.payload == b""
    full = get(request={"name": created.name, "response_view": FULL}, retry=None)
    assert full.pull_message.payload == b"secret" and full.view == FULL
    [leased] = _lease(v2, queue, view=BASIC)
    assert leased.pull_message.payload == b""


def test_create_time_is_cut_to_the_second_and_a_task_without_schedule_time_is_due_now(v2: Target) -> None:
    queue = v2.queue()
    created = _pb(_create(v2, queue))
    assert created.create_time.nanos == 0
    assert 0 <= _us(created.schedule_time) - created.create_time.seconds * US < US
    assert created.status.attempt_dispatch_count == 0


def test_a_past_schedule_time_is_set_to_the_time_of_creation(v2: Target) -> None:
    # CreateTaskRequest: "If schedule_time is not set or is in the past then Cloud Tasks
    # will set it to the current time" (where a v1 insert keeps a past ETA).
    queue = v2.queue()
    first = _pb(_create(v2, queue, "now"))
    past = timestamp_pb2.Timestamp(seconds=first.create_time.seconds - 3600)
    created = _pb(_create(v2, queue, "past", schedule_time=past))
    assert _us(created.schedule_time) >= _us(first.schedule_time)
    assert [_name(t) for t in _lease(v2, queue, max_tasks=1)] == ["now"]


def test_a_named_task_is_created_once_and_its_name_stays_reserved_after_deletion(v2: Target) -> None:
    queue = v2.queue()
    _create(v2, queue, "once")
    refused(v2, Code.ALREADY_EXISTS, lambda: _create(v2, queue, "once"))
    v2.client.delete_task(name=f"{queue}/tasks/once", retry=None)
    refused(v2, Code.NOT_FOUND, lambda: v2.client.get_task(name=f"{queue}/tasks/once", retry=None))
    refused(v2, Code.ALREADY_EXISTS, lambda: _create(v2, queue, "once"))
    refused(v2, Code.NOT_FOUND, lambda: v2.client.delete_task(name=f"{queue}/tasks/once", retry=None))


def test_a_task_named_under_another_queue_or_badly_is_invalid(v2: Target) -> None:
    queue, other = v2.queue(), v2.queue()
    task = ct.Task(name=f"{other}/tasks/t1", pull_message=ct.PullMessage(payload=b"x"))
    refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.create_task(parent=queue, task=task, retry=None))
    refused(v2, Code.INVALID_ARGUMENT, lambda: _create(v2, queue, "bad.name"))
    refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.get_task(name=f"{queue}/tasks/a.b", retry=None))


def test_payload_tag_and_schedule_time_limits_are_invalid_arguments(v2: Target) -> None:
    queue = v2.queue()
    refused(v2, Code.INVALID_ARGUMENT, lambda: _create(v2, queue, payload=b"x" * (1024 * 1024 + 1)))
    refused(v2, Code.INVALID_ARGUMENT, lambda: _create(v2, queue, tag="t" * 501))
    now = _us(_pb(_create(v2, queue)).schedule_time)
    far = timestamp_pb2.Timestamp(seconds=now // US + 31 * 24 * 3600)
    refused(v2, Code.INVALID_ARGUMENT, lambda: _create(v2, queue, schedule_time=far))
    _create(v2, queue, "big", payload=b"x" * (1024 * 1024))


def test_unknown_tasks_are_not_found(v2: Target) -> None:
    queue = v2.queue()
    refused(v2, Code.NOT_FOUND, lambda: v2.client.get_task(name=f"{queue}/tasks/nope", retry=None))
    refused(v2, Code.NOT_FOUND, lambda: v2.client.delete_task(name=f"{queue}/tasks/nope", retry=None))


def test_lease_hands_a_task_out_once_until_its_lease_ends(v2: Target) -> None:
    queue = v2.queue()
    _create(v2, queue, "t1", payload=b"work")
    [first] = _lease(v2, queue, seconds=60)
    assert first.pull_message.payload == b"work" and first.status.attempt_dispatch_count == 1
    assert 59 * US <= _us(_pb(first).schedule_time) - _us(_pb(first).create_time) <= 62 * US
    assert _lease(v2, queue) == []
    v2.advance(61)
    [again] = _lease(v2, queue)
    assert _name(again) == "t1" and again.status.attempt_dispatch_count == 2


def test_lease_takes_due_tasks_oldest_first_up_to_max_tasks(v2: Target) -> None:
    queue = v2.queue()
    now = _us(_pb(_create(v2, queue, "a")).schedule_time)
    _create(v2, queue, "later", schedule_time=timestamp_pb2.Timestamp(seconds=now // US + 3600))
    for task_id in ("b", "c"):
        _create(v2, queue, task_id)
    assert [_name(t) for t in _lease(v2, queue, max_tasks=2)] == ["a", "b"]
    assert [_name(t) for t in _lease(v2, queue, max_tasks=10)] == ["c"]


def test_lease_filters_by_tag_and_by_the_oldest_tasks_tag(v2: Target) -> None:
    queue = v2.queue()
    for task_id, tag in (("r1", "red"), ("b1", "blue"), ("r2", "red"), ("b2", "blue")):
        _create(v2, queue, task_id, tag=tag)
        v2.advance(0.001)
    assert sorted(_name(t) for t in _lease(v2, queue, task_filter='tag="blue"')) == ["b1", "b2"]
    oldest = _lease(v2, queue, task_filter="tag_function=oldest_tag()")
    assert sorted(_name(t) for t in oldest) == ["r1", "r2"] and {t.pull_message.tag for t in oldest} == {"red"}


def test_lease_arguments_out_of_range_are_invalid(v2: Target) -> None:
    queue = v2.queue()
    refused(v2, Code.INVALID_ARGUMENT, lambda: _lease(v2, queue, max_tasks=0))
    refused(v2, Code.INVALID_ARGUMENT, lambda: _lease(v2, queue, max_tasks=1001))
    refused(v2, Code.INVALID_ARGUMENT, lambda: _lease(v2, queue, seconds=7 * 24 * 3600 + 1))
    refused(v2, Code.INVALID_ARGUMENT, lambda: _lease(v2, queue, task_filter="colour=red"))
    no_duration = ct.LeaseTasksRequest(parent=queue, max_tasks=1)
    refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.lease_tasks(request=no_duration, retry=None))


def test_renew_needs_the_current_schedule_time_of_a_running_lease(v2: Target) -> None:
    queue = v2.queue()
    _create(v2, queue, "t1")
    [leased] = _lease(v2, queue, seconds=60)
    renewed = _renew(v2, leased, seconds=300)
    assert _us(_pb(renewed).schedule_time) > _us(_pb(leased).schedule_time)
    assert renewed.status.attempt_dispatch_count == 1
    refused(v2, Code.FAILED_PRECONDITION, lambda: _renew(v2, leased))  # the old lease's time
    v2.advance(301)
    refused(v2, Code.FAILED_PRECONDITION, lambda: _renew(v2, renewed))  # expired
    missing = ct.RenewLeaseRequest(name=leased.name, lease_duration=duration_pb2.Duration(seconds=1))
    refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.renew_lease(request=missing, retry=None))


def test_cancel_makes_the_task_leasable_at_once(v2: Target) -> None:
    queue = v2.queue()
    _create(v2, queue, "t1")
    [leased] = _lease(v2, queue)
    stale = timestamp_pb2.Timestamp(seconds=_pb(leased).schedule_time.seconds - 1)
    cancel = v2.client.cancel_lease
    refused(v2, Code.FAILED_PRECONDITION, lambda: cancel(name=leased.name, schedule_time=stale, retry=None))
    cancelled = cancel(name=leased.name, schedule_time=_stamp(leased), retry=None)
    assert cancelled.status.attempt_dispatch_count == 1
    [again] = _lease(v2, queue)
    assert _name(again) == "t1" and again.status.attempt_dispatch_count == 2


def test_acknowledge_deletes_only_for_the_lease_holder(v2: Target) -> None:
    queue = v2.queue()
    _create(v2, queue, "t1")
    [leased] = _lease(v2, queue, seconds=60)
    renewed = _renew(v2, leased)
    ack = v2.client.acknowledge_task
    refused(v2, Code.FAILED_PRECONDITION, lambda: ack(name=leased.name, schedule_time=_stamp(leased), retry=None))
    assert v2.client.get_task(name=leased.name, retry=None).name == leased.name
    ack(name=renewed.name, schedule_time=_stamp(renewed), retry=None)
    refused(v2, Code.NOT_FOUND, lambda: v2.client.get_task(name=leased.name, retry=None))
    refused(v2, Code.NOT_FOUND, lambda: ack(name=renewed.name, schedule_time=_stamp(renewed), retry=None))


def test_an_expired_lease_cannot_be_acknowledged(v2: Target) -> None:
    queue = v2.queue()
    _create(v2, queue, "t1")
    [leased] = _lease(v2, queue, seconds=10)
    v2.advance(11)
    ack = v2.client.acknowledge_task
    refused(v2, Code.FAILED_PRECONDITION, lambda: ack(name=leased.name, schedule_time=_stamp(leased), retry=None))
    assert _name(v2.client.get_task(name=leased.name, retry=None)) == "t1"


def test_a_future_task_is_not_leased_before_its_schedule_time(v2: Target) -> None:
    queue = v2.queue()
    now = _us(_pb(_create(v2, queue, "now")).schedule_time)
    _create(v2, queue, "soon", schedule_time=timestamp_pb2.Timestamp(seconds=now // US + 30))
    assert [_name(t) for t in _lease(v2, queue)] == ["now"]
    v2.advance(31)
    assert [_name(t) for t in _lease(v2, queue)] == ["soon"]


# -- queues -------------------------------------------------------------------------------


def _new_queue(v2: Target, max_attempts: int | None = None) -> str:
    """A queue made with CreateQueue (a pull queue)."""
    name = f"{LOCATION}/queues/c{uuid.uuid4().hex[:10]}"
    retry = ct.RetryConfig(max_attempts=max_attempts) if max_attempts else ct.RetryConfig(unlimited_attempts=True)
    queue = ct.Queue(name=name, pull_target=ct.PullTarget(), retry_config=retry)
    created = v2.client.create_queue(parent=LOCATION, queue=queue, retry=None)
    assert created.name == name and created.retry_config.max_attempts == (max_attempts or 0)
    return name


def test_a_created_pull_queue_is_described_listed_and_not_created_twice(v2: Target) -> None:
    name = _new_queue(v2, max_attempts=3)
    got = _pb(v2.client.get_queue(name=name, retry=None))
    assert got.HasField("pull_target") and got.retry_config.max_attempts == 3
    assert got.state == ct.Queue.State.RUNNING and not got.HasField("stats")
    assert name in [queue.name for queue in v2.client.list_queues(parent=LOCATION, retry=None)]
    again = ct.Queue(name=name, pull_target=ct.PullTarget())
    refused(v2, Code.ALREADY_EXISTS, lambda: v2.client.create_queue(parent=LOCATION, queue=again, retry=None))
    zero = ct.Queue.pb()(name=f"{name}x")
    zero.pull_target.SetInParent()
    zero.retry_config.max_attempts = 0  # set, and zero
    zero_request = ct.CreateQueueRequest.pb()(parent=LOCATION, queue=zero)
    refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.create_queue(request=zero_request, retry=None))
    bad = ct.Queue(name="projects/other/locations/x/queues/q", pull_target=ct.PullTarget())
    refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.create_queue(parent=LOCATION, queue=bad, retry=None))


def test_get_queue_reads_stats_only_through_the_read_mask(v2: Target) -> None:
    name = _new_queue(v2)
    first = _pb(_create(v2, name, "a"))
    _create(v2, name, "b")
    mask = field_mask_pb2.FieldMask(paths=["name", "stats"])
    got = _pb(v2.client.get_queue(request={"name": name, "read_mask": mask}, retry=None))
    assert got.stats.tasks_count == 2 and _us(got.stats.oldest_estimated_arrival_time) == _us(first.schedule_time)
    assert not got.HasField("retry_config")
    refused(
        v2,
        Code.INVALID_ARGUMENT,
        lambda: v2.client.get_queue(request={"name": name, "read_mask": {"paths": ["colour"]}}, retry=None),
    )


def test_update_queue_changes_only_what_its_mask_names(v2: Target) -> None:
    name = _new_queue(v2, max_attempts=4)
    six = ct.Queue(name=name, pull_target=ct.PullTarget(), retry_config=ct.RetryConfig(max_attempts=6))
    update = v2.client.update_queue
    # retry_config is in the body, not in the mask: it stays as it is.
    assert update(queue=six, update_mask={"paths": ["pull_target"]}, retry=None).retry_config.max_attempts == 4
    bare = ct.Queue(name=name, pull_target=ct.PullTarget())
    assert update(queue=bare, update_mask={"paths": ["pull_target"]}, retry=None).retry_config.max_attempts == 4
    assert v2.client.get_queue(name=name, retry=None).retry_config.max_attempts == 4
    mask = {"paths": ["retry_config.max_attempts"]}
    assert update(queue=six, update_mask=mask, retry=None).retry_config.max_attempts == 6
    # Without a mask every field is updated: a body without retry_config leaves the
    # attempts unlimited, as a mask naming retry_config does.
    assert update(queue=bare, retry=None).retry_config.unlimited_attempts
    update(queue=six, retry=None)
    assert update(queue=bare, update_mask={"paths": ["retry_config"]}, retry=None).retry_config.unlimited_attempts
    assert v2.client.get_queue(name=name, retry=None).retry_config.unlimited_attempts


def test_a_task_leased_max_attempts_times_is_not_leased_again(v2: Target) -> None:
    name = _new_queue(v2, max_attempts=2)
    _create(v2, name, "t1")
    assert [t.status.attempt_dispatch_count for t in _lease(v2, name, seconds=10)] == [1]
    v2.advance(11)
    assert [t.status.attempt_dispatch_count for t in _lease(v2, name, seconds=10)] == [2]
    v2.advance(11)
    assert _lease(v2, name) == []
    refused(v2, Code.NOT_FOUND, lambda: v2.client.get_task(name=f"{name}/tasks/t1", retry=None))


def test_a_paused_queue_takes_tasks_and_refuses_leases_until_resumed(v2: Target) -> None:
    name = _new_queue(v2)
    paused = v2.client.pause_queue(name=name, retry=None)
    assert paused.state == ct.Queue.State.PAUSED
    assert v2.client.get_queue(name=name, retry=None).state == ct.Queue.State.PAUSED
    _create(v2, name, "t1")
    refused(v2, Code.FAILED_PRECONDITION, lambda: _lease(v2, name))
    assert v2.client.resume_queue(name=name, retry=None).state == ct.Queue.State.RUNNING
    assert [_name(t) for t in _lease(v2, name)] == ["t1"]


def test_a_queue_nobody_created_or_used_is_not_found(v2: Target) -> None:
    name = f"{LOCATION}/queues/never{uuid.uuid4().hex[:8]}"
    refused(v2, Code.NOT_FOUND, lambda: v2.client.get_queue(name=name, retry=None))
    assert name not in [queue.name for queue in v2.client.list_queues(parent=LOCATION, retry=None)]
