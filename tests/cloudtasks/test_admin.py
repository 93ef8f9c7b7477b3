"""The Cloud Tasks backend's admin verbs where Cloud Tasks itself shows through: aliases,
push queues, UpdateQueue's create-on-update, lost replies, many ListTasks pages."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc

from backends import errors
from backends.base import NewTask, Queue
from tests.cloudtasks.conftest import LOCATION, QUEUE_NAME
from tests.support.cloudtasks_fake import FakeCloudTasks
from tests.support.cloudtasks_model import StoredTask

pytestmark = pytest.mark.cloudtasks

WORK = Queue("demo-app", "work")


def test_list_queues_names_pull_queues_under_the_v1_project_that_calls_them(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work", max_attempts=4)
    fake.add_queue(LOCATION, "mail", pull=False)
    backend = open_ct("projects=my-app")
    assert backend.list_queues() == [Queue("my-app", "work", max_leases=4)]
    assert backend.list_queues("my-app") == [Queue("my-app", "work", max_leases=4)]
    # A project this bridge does not serve has no queues here.
    assert backend.list_queues("demo-app") == []


def test_update_queue_never_creates_the_queue_it_was_asked_to_change(fake: FakeCloudTasks, open_ct: Any) -> None:
    backend = open_ct("create_queues=true")
    with pytest.raises(errors.NotFound):
        backend.update_queue(Queue("demo-app", "work", max_leases=3))
    assert QUEUE_NAME not in fake.queues
    fake.add_queue(LOCATION, "work")
    backend.update_queue(Queue("demo-app", "work", max_leases=3))
    assert fake.queues[QUEUE_NAME].max_attempts == 3


def test_a_queue_delete_whose_reply_was_lost_succeeded(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work")
    backend = open_ct()
    fake.fail(gexc.ServiceUnavailable, methods=["DeleteQueue"], after=True)
    backend.delete_queue(WORK)
    assert fake.calls.count("DeleteQueue") == 2
    assert QUEUE_NAME not in fake.queues


def test_a_queue_create_whose_reply_was_lost_succeeded(fake: FakeCloudTasks, open_ct: Any) -> None:
    backend = open_ct()
    fake.fail(gexc.ServiceUnavailable, methods=["CreateQueue"], after=True)
    backend.create_queue(Queue("demo-app", "work", max_leases=2))
    assert fake.calls.count("CreateQueue") == 2
    assert fake.queues[QUEUE_NAME].max_attempts == 2 and fake.queues[QUEUE_NAME].pull


def test_recreating_a_deleted_queue_too_soon_is_a_clear_400(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work")
    backend = open_ct()
    backend.delete_queue(WORK)
    with pytest.raises(errors.InvalidArgument, match="existed too recently"):
        backend.create_queue(WORK)


def test_a_page_in_eta_order_reads_every_list_tasks_page(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work")
    backend = open_ct()
    backend.insert(WORK, NewTask("first", b""))
    stored = fake.queues[QUEUE_NAME]
    later = stored.tasks[f"{QUEUE_NAME}/tasks/first"].schedule_us + 1
    for n in range(2500):
        name = f"{QUEUE_NAME}/tasks/t{n:04d}"
        stored.tasks[name] = StoredTask(name, b"", "", later, later + n)
    before = fake.calls.count("ListTasks")
    page = backend.list_tasks_page(WORK, page_size=3)
    assert fake.calls.count("ListTasks") - before == 3
    assert [task.id for task in page.tasks] == ["first", "t0000", "t0001"]
    following = backend.list_tasks_page(WORK, page_size=2, page_token=page.next_page_token)
    assert [task.id for task in following.tasks] == ["t0002", "t0003"]


def test_the_verbs_cloud_tasks_cannot_do_say_so(open_ct: Any) -> None:
    backend = open_ct()
    assert {"dead_letters", "clear_tombstones", "activity"}.isdisjoint(backend.supports)
    for call in (backend.dead_letters, backend.clear_tombstones, backend.activity):
        with pytest.raises(errors.Unsupported, match="Cloud Tasks"):
            call(WORK)
