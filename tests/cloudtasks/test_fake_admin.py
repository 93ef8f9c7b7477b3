"""The fake Cloud Tasks service's queue administration and paging, through the official client,
as the v2beta2 protos' comments describe them."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, field_mask_pb2

from tests.cloudtasks.conftest import LOCATION, QUEUE_NAME
from tests.support.cloudtasks_fake import FakeCloudTasks

pytestmark = pytest.mark.cloudtasks

DAY = 24 * 3600


@pytest.fixture
def raw(open_ct: Any) -> Any:
    return open_ct().client


def _pull_queue(name: str = QUEUE_NAME, attempts: int | None = None) -> ct.Queue:
    retry = ct.RetryConfig(max_attempts=attempts) if attempts else ct.RetryConfig(unlimited_attempts=True)
    return ct.Queue(name=name, pull_target=ct.PullTarget(), retry_config=retry)


def _create_task(raw: Any, task_id: str) -> None:
    task = ct.Task(name=f"{QUEUE_NAME}/tasks/{task_id}", pull_message=ct.PullMessage(payload=b"x"))
    raw.create_task(parent=QUEUE_NAME, task=task, retry=None)


def _lease(raw: Any) -> list[Any]:
    request = ct.LeaseTasksRequest(parent=QUEUE_NAME, max_tasks=10, lease_duration=duration_pb2.Duration(seconds=60))
    return list(raw.lease_tasks(request=request, retry=None).tasks)


def test_update_queue_creates_a_missing_queue_and_updates_only_the_masked_fields(raw: Any) -> None:
    created = raw.update_queue(queue=_pull_queue(attempts=3), retry=None)
    assert created.retry_config.max_attempts == 3 and "pull_target" in created
    change = ct.Queue(name=QUEUE_NAME, retry_config=ct.RetryConfig(max_attempts=5))
    change.tombstone_ttl = duration_pb2.Duration(seconds=60)
    mask = field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"])
    updated = raw.update_queue(queue=change, update_mask=mask, retry=None)
    assert updated.retry_config.max_attempts == 5
    assert updated.tombstone_ttl.seconds == 3600  # not in the mask: unchanged
    with pytest.raises(gexc.InvalidArgument):
        raw.update_queue(queue=change, update_mask=field_mask_pb2.FieldMask(paths=["colour"]), retry=None)


def test_a_deleted_queue_goes_with_its_tasks_and_its_name_stays_taken_for_7_days(
    raw: Any, fake: FakeCloudTasks
) -> None:
    raw.create_queue(parent=LOCATION, queue=_pull_queue(), retry=None)
    _create_task(raw, "t1")
    raw.delete_queue(name=QUEUE_NAME, retry=None)
    with pytest.raises(gexc.NotFound):
        raw.get_queue(name=QUEUE_NAME, retry=None)
    with pytest.raises(gexc.NotFound):
        raw.delete_queue(name=QUEUE_NAME, retry=None)
    with pytest.raises(gexc.FailedPrecondition):
        raw.create_queue(parent=LOCATION, queue=_pull_queue(), retry=None)
    with pytest.raises(gexc.FailedPrecondition):
        raw.update_queue(queue=_pull_queue(), retry=None)
    fake.advance(7 * DAY + 1)
    raw.create_queue(parent=LOCATION, queue=_pull_queue(), retry=None)
    assert list(raw.list_tasks(parent=QUEUE_NAME, retry=None)) == []


def test_purge_deletes_the_tasks_created_before_it_and_sets_purge_time(raw: Any, fake: FakeCloudTasks) -> None:
    raw.create_queue(parent=LOCATION, queue=_pull_queue(), retry=None)
    _create_task(raw, "t1")
    _create_task(raw, "t2")
    fake.advance(1)
    purged = raw.purge_queue(name=QUEUE_NAME, retry=None)
    assert "purge_time" in purged
    assert list(raw.list_tasks(parent=QUEUE_NAME, retry=None)) == []
    # Purged tasks were deleted: their names stay reserved like any deleted task's.
    with pytest.raises(gexc.AlreadyExists):
        _create_task(raw, "t1")
    with pytest.raises(gexc.NotFound):
        raw.purge_queue(name=f"{LOCATION}/queues/nowhere", retry=None)


def test_a_paused_pull_queue_answers_leases_with_failed_precondition(raw: Any) -> None:
    raw.create_queue(parent=LOCATION, queue=_pull_queue(), retry=None)
    _create_task(raw, "t1")
    assert raw.pause_queue(name=QUEUE_NAME, retry=None).state == ct.Queue.State.PAUSED
    _create_task(raw, "t2")  # "Tasks can still be added when the queue is paused."
    with pytest.raises(gexc.FailedPrecondition):
        _lease(raw)
    assert raw.resume_queue(name=QUEUE_NAME, retry=None).state == ct.Queue.State.RUNNING
    assert len(_lease(raw)) == 2


def test_list_queues_pages_through_every_queue_by_name(raw: Any) -> None:
    for n in range(5):
        raw.create_queue(parent=LOCATION, queue=_pull_queue(f"{LOCATION}/queues/q{n}"), retry=None)
    first = raw.list_queues(request=ct.ListQueuesRequest(parent=LOCATION, page_size=2), retry=None)
    pages = list(first.pages)
    assert [len(page.queues) for page in pages] == [2, 2, 1]
    assert [q.name.rsplit("/", 1)[1] for page in pages for q in page.queues] == [f"q{n}" for n in range(5)]
    with pytest.raises(gexc.InvalidArgument):
        raw.list_queues(request=ct.ListQueuesRequest(parent=LOCATION, page_size=9801), retry=None)
    with pytest.raises(gexc.InvalidArgument):
        raw.list_queues(request=ct.ListQueuesRequest(parent=LOCATION, page_token="nonsense"), retry=None)


def test_list_tasks_refuses_a_page_token_it_did_not_give(raw: Any) -> None:
    raw.create_queue(parent=LOCATION, queue=_pull_queue(), retry=None)
    with pytest.raises(gexc.InvalidArgument):
        raw.list_tasks(request=ct.ListTasksRequest(parent=QUEUE_NAME, page_token="nonsense"), retry=None)
