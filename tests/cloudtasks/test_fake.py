"""The fake Cloud Tasks service holds to the v2beta2 reference, through the official client."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from backends.cloudtasks.backend import CloudTasksBackend
from tests.cloudtasks.conftest import LOCATION, QUEUE_NAME
from tests.support.cloudtasks_fake import FakeCloudTasks
from tests.support.cloudtasks_model import TOMBSTONED

pytestmark = pytest.mark.cloudtasks

FULL = ct.Task.View.FULL


class Client:
    """Short forms of the raw calls, on the fake's queue ``work``."""

    def __init__(self, fake: FakeCloudTasks, backend: CloudTasksBackend) -> None:
        self.fake = fake
        self.raw = backend.client

    def create(self, task_id: str = "t1", payload: bytes = b"body", tag: str = "", **fields: Any) -> Any:
        task = ct.Task(name=f"{QUEUE_NAME}/tasks/{task_id}", pull_message=ct.PullMessage(payload=payload, tag=tag))
        for key, value in fields.items():
            setattr(task, key, value)
        return self.raw.create_task(parent=QUEUE_NAME, task=task, retry=None)

    def lease(self, seconds: int = 60, max_tasks: int = 10, view: int = FULL, task_filter: str = "") -> list[Any]:
        request = ct.LeaseTasksRequest(
            parent=QUEUE_NAME,
            max_tasks=max_tasks,
            lease_duration=duration_pb2.Duration(seconds=seconds),
            response_view=view,
            filter=task_filter,
        )
        return list(self.raw.lease_tasks(request=request, retry=None).tasks)

    def get(self, task_id: str = "t1", view: int = ct.Task.View.VIEW_UNSPECIFIED) -> Any:
        return self.raw.get_task(request={"name": f"{QUEUE_NAME}/tasks/{task_id}", "response_view": view}, retry=None)


@pytest.fixture
def client(fake: FakeCloudTasks, open_ct: Any) -> Client:
    fake.add_queue(LOCATION, "work")
    return Client(fake, open_ct())


def _pb(message: Any) -> Any:
    return type(message).pb(message)


def _us(stamp: timestamp_pb2.Timestamp) -> int:
    return int(stamp.seconds) * 1_000_000 + int(stamp.nanos) // 1000


def test_basic_views_carry_no_payload_and_full_views_do(client: Client) -> None:
    created = client.create(payload=b"secret", tag="red")
    assert created.pull_message.payload == b"" and created.view == ct.Task.View.BASIC
    assert client.get().pull_message.payload == b""
    assert client.get(view=FULL).pull_message.payload == b"secret"
    assert client.get().pull_message.tag == "red"
    [leased] = client.lease(view=ct.Task.View.BASIC)
    assert leased.pull_message.payload == b""


def test_create_time_is_cut_to_the_second_and_schedule_time_kept_to_the_microsecond(client: Client) -> None:
    created = _pb(client.create())
    assert created.create_time.nanos == 0
    assert _us(created.schedule_time) >= _us(created.create_time)
    eta = timestamp_pb2.Timestamp(seconds=created.schedule_time.seconds + 60, nanos=123_456_789)
    later = _pb(client.create("t2", schedule_time=eta))
    assert later.schedule_time.nanos == 123_456_000


def test_renew_cancel_and_acknowledge_need_the_current_schedule_time(client: Client) -> None:
    client.create()
    [leased] = client.lease()
    token = _pb(leased).schedule_time
    stale = timestamp_pb2.Timestamp(seconds=token.seconds, nanos=token.nanos - 1000 if token.nanos else 1000)
    name = f"{QUEUE_NAME}/tasks/t1"
    week = duration_pb2.Duration(seconds=7 * 24 * 3600)
    for call in (
        lambda: client.raw.renew_lease(name=name, schedule_time=stale, lease_duration=week, retry=None),
        lambda: client.raw.cancel_lease(name=name, schedule_time=stale, retry=None),
        lambda: client.raw.acknowledge_task(name=name, schedule_time=stale, retry=None),
    ):
        with pytest.raises(gexc.FailedPrecondition):
            call()
    renewed = client.raw.renew_lease(name=name, schedule_time=token, lease_duration=week, retry=None)
    with pytest.raises(gexc.InvalidArgument):
        longer = duration_pb2.Duration(seconds=7 * 24 * 3600 + 1)
        client.raw.renew_lease(name=name, schedule_time=_pb(renewed).schedule_time, lease_duration=longer, retry=None)
    client.fake.advance(7 * 24 * 3600 + 1)
    with pytest.raises(gexc.FailedPrecondition):  # the lease ran out
        client.raw.acknowledge_task(name=name, schedule_time=_pb(renewed).schedule_time, retry=None)
    [again] = client.lease()
    client.raw.acknowledge_task(name=name, schedule_time=_pb(again).schedule_time, retry=None)
    with pytest.raises(gexc.NotFound):
        client.get()


@pytest.mark.parametrize(
    "name",
    [
        f"{QUEUE_NAME}/tasks/a.b",
        f"{QUEUE_NAME}/tasks/" + "x" * 501,
        f"{LOCATION}/queues/other/tasks/t1",
        "tasks/t1",
    ],
)
def test_task_names_must_follow_the_documented_pattern_under_their_queue(client: Client, name: str) -> None:
    task = ct.Task(name=name, pull_message=ct.PullMessage(payload=b""))
    with pytest.raises(gexc.InvalidArgument):
        client.raw.create_task(parent=QUEUE_NAME, task=task, retry=None)


def test_a_task_without_a_name_gets_one_and_a_missing_queue_is_a_failed_precondition(client: Client) -> None:
    task = ct.Task(pull_message=ct.PullMessage(payload=b"x"))
    assert client.raw.create_task(parent=QUEUE_NAME, task=task, retry=None).name.startswith(QUEUE_NAME + "/tasks/")
    with pytest.raises(gexc.FailedPrecondition, match="Queue does not exist"):
        client.raw.create_task(parent=f"{LOCATION}/queues/nowhere", task=task, retry=None)
    with pytest.raises(gexc.NotFound):
        client.raw.list_tasks(parent=f"{LOCATION}/queues/nowhere", retry=None)


def test_a_deleted_name_stays_reserved_for_the_tombstone_ttl(client: Client) -> None:
    client.create()
    client.raw.delete_task(name=f"{QUEUE_NAME}/tasks/t1", retry=None)
    with pytest.raises(gexc.NotFound) as caught:
        client.get()
    assert caught.value.message == TOMBSTONED
    with pytest.raises(gexc.AlreadyExists):
        client.create()
    client.fake.advance(3600)
    with pytest.raises(gexc.NotFound) as caught:
        client.get()
    assert caught.value.message == "Requested entity was not found."
    client.create()


@pytest.mark.parametrize("max_tasks, seconds", [(0, 60), (1001, 60), (1, 7 * 24 * 3600 + 1), (1, -1)])
def test_a_lease_takes_1_to_1000_tasks_for_at_most_a_week(client: Client, max_tasks: int, seconds: int) -> None:
    with pytest.raises(gexc.InvalidArgument):
        client.lease(seconds=seconds, max_tasks=max_tasks)


def test_a_lease_needs_a_duration_and_a_filter_in_the_documented_grammar(client: Client) -> None:
    with pytest.raises(gexc.InvalidArgument):
        client.raw.lease_tasks(request=ct.LeaseTasksRequest(parent=QUEUE_NAME, max_tasks=1), retry=None)
    for bad in ("tag", "tag_function=newest_tag()", "label=x", 'tag="a'):
        with pytest.raises(gexc.InvalidArgument):
            client.lease(task_filter=bad)


def test_lease_filters_pick_a_tag_or_the_oldest_tasks_tag(client: Client) -> None:
    client.create("a1", tag="a")
    client.create("b1", tag='b "quoted"')
    client.create("a2", tag="a")
    assert [t.name.rsplit("/", 1)[1] for t in client.lease(task_filter='tag="b \\"quoted\\""')] == ["b1"]
    assert [t.name.rsplit("/", 1)[1] for t in client.lease(task_filter="tag_function=oldest_tag()")] == ["a1", "a2"]


def test_a_task_is_scheduled_at_most_30_days_ahead(client: Client) -> None:
    now = _pb(client.create("now")).schedule_time
    ahead = timestamp_pb2.Timestamp(seconds=now.seconds + 31 * 24 * 3600)
    with pytest.raises(gexc.InvalidArgument):
        client.create("far", schedule_time=ahead)


def test_more_than_10_lease_calls_a_second_are_resource_exhausted(client: Client) -> None:
    client.fake.clock.freeze()
    for _ in range(10):
        client.lease()
    with pytest.raises(gexc.ResourceExhausted):
        client.lease()
    client.fake.advance(1)
    client.lease()


def test_list_pages_hold_at_most_1000_tasks_in_no_promised_order(client: Client) -> None:
    with pytest.raises(gexc.InvalidArgument):
        client.raw.list_tasks(request={"parent": QUEUE_NAME, "page_size": 1001}, retry=None)
    base = _pb(client.create("t00")).schedule_time.seconds + 600
    for i in range(1, 20):
        client.create(f"t{i:02d}", schedule_time=timestamp_pb2.Timestamp(seconds=base + i))
    page = client.raw.list_tasks(request={"parent": QUEUE_NAME, "page_size": 5}, retry=None)
    first = [task.name for task in page.tasks]
    assert len(first) == 5 and first != sorted(first)
    assert next(iter(page.pages)).next_page_token


def test_a_task_leased_max_attempts_times_is_deleted_on_the_next_lease(fake: FakeCloudTasks, client: Client) -> None:
    fake.queues[QUEUE_NAME].max_attempts = 2
    client.create()
    for count in (1, 2):
        [leased] = client.lease(seconds=0)
        assert leased.status.attempt_dispatch_count == count
    assert client.lease() == []
    with pytest.raises(gexc.NotFound):
        client.get()


def test_stats_come_only_through_the_read_mask(client: Client) -> None:
    client.create()
    plain = _pb(client.raw.get_queue(name=QUEUE_NAME, retry=None))
    assert not plain.HasField("stats") and plain.HasField("pull_target")
    mask = field_mask_pb2.FieldMask(paths=["stats"])
    masked = _pb(client.raw.get_queue(request={"name": QUEUE_NAME, "read_mask": mask}, retry=None))
    assert masked.stats.tasks_count == 1 and masked.HasField("stats") and not masked.HasField("pull_target")


def test_faults_fail_the_next_calls_by_class_before_or_after_they_take_effect(client: Client) -> None:
    client.fake.fail(gexc.ServiceUnavailable, times=2, methods=["GetTask"])
    client.create()
    for _ in range(2):
        with pytest.raises(gexc.ServiceUnavailable):
            client.get()
    client.get()
    client.fake.fail(gexc.DeadlineExceeded, after=True)
    with pytest.raises(gexc.DeadlineExceeded):
        client.create("t2")
    client.get("t2")
    assert client.fake.calls == ["CreateTask", "GetTask", "GetTask", "GetTask", "CreateTask", "GetTask"]
