"""taskqueues.get, stats, queue.yaml, and the forms of a project name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.access.queues import QueueFileError, QueueRegistry
from tests.support.api import PROJECT, QUEUE, ids, insert, lease, listed, stats
from tests.support.harness import Harness
from tests.support.http import BridgeServer, error_of

QUEUE_YAML = """\
queue:
- name: render
  mode: pull
  acl:
  - user_email: worker@example.com
  - writer_email: frontend@example.com
  - user_email: night-worker@example.com
  retry_parameters:
    task_retry_limit: 5
- name: mail
  rate: 5/s
"""


def test_a_queue_describes_itself_without_stats_unless_asked(api: Any) -> None:
    queue = api.taskqueues().get(project=PROJECT, taskqueue=QUEUE).execute()
    assert queue["kind"] == "taskqueues#taskqueue"
    assert queue["id"] == f"projects/{PROJECT}/taskqueues/{QUEUE}"
    assert "stats" not in queue
    assert "maxLeases" not in queue


def test_stats_count_live_tasks_and_give_the_oldest_eta_in_seconds(api: Any) -> None:
    empty = stats(api)
    assert empty["totalTasks"] == 0 and empty["oldestTask"] == "0"
    first = insert(api, id="t1")
    insert(api, id="t2")
    lease(api, num=1, secs=3600)
    counts = stats(api)
    assert counts["totalTasks"] == 2
    # t1 is leased for an hour, so the oldest ETA is now t2's.
    assert int(counts["oldestTask"]) >= int(first["enqueueTimestamp"]) // 1_000_000
    assert int(counts["oldestTask"]) < int(first["enqueueTimestamp"]) // 1_000_000 + 60


def test_stats_count_the_leases_of_the_last_minute_and_hour(api: Any, harness: Harness) -> None:
    for i in range(5):
        insert(api, id=f"t{i}")
    lease(api, num=2, secs=10)
    harness.advance(30)
    lease(api, num=1, secs=10)
    counts = stats(api)
    # Strings, not numbers: both are int64 on the wire.
    assert (counts["leasedLastMinute"], counts["leasedLastHour"]) == ("3", "3")
    harness.advance(45)
    counts = stats(api)
    assert (counts["leasedLastMinute"], counts["leasedLastHour"]) == ("1", "3")
    harness.advance(3600)
    counts = stats(api)
    assert (counts["leasedLastMinute"], counts["leasedLastHour"]) == ("0", "0")


def test_int64_stats_are_strings_and_int32_stats_are_numbers(bridge: BridgeServer, api: Any) -> None:
    # leasedLastMinute and leasedLastHour are int64 too: the test above reads them as strings.
    insert(api, id="t1")
    reply = bridge.request("GET", f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}?getStats=true")
    counts = reply.json["stats"]
    assert isinstance(counts["totalTasks"], int) and counts["totalTasks"] == 1
    assert isinstance(counts["oldestTask"], str) and int(counts["oldestTask"]) > 0


def test_queue_yaml_gives_max_leases_and_acl(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Path]
) -> None:
    api = make_bridge(queues=queue_file(QUEUE_YAML)).api()
    queue = api.taskqueues().get(project=PROJECT, taskqueue="render").execute()
    assert queue["maxLeases"] == 5
    assert queue["acl"]["consumerEmails"] == ["worker@example.com", "night-worker@example.com"]
    assert queue["acl"]["producerEmails"] == ["frontend@example.com"]


def test_with_queue_yaml_unknown_queues_are_404_and_push_queues_400(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Path]
) -> None:
    api = make_bridge(queues=queue_file(QUEUE_YAML)).api()
    error_of(api.taskqueues().get(project=PROJECT, taskqueue="nope"), 404, "notFound")
    error_of(api.tasks().insert(project=PROJECT, taskqueue="nope", body={}), 404, "notFound")
    error_of(api.tasks().lease(project=PROJECT, taskqueue="mail", numTasks=1, leaseSecs=1), 400, "invalid")
    error_of(api.tasks().insert(project=PROJECT, taskqueue="mail", body={}), 400, "invalid")
    assert insert(api, queue="render", id="ok")["id"] == "ok"


def test_without_queue_yaml_queues_are_created_on_first_use(api: Any) -> None:
    insert(api, queue="brand-new-queue", id="t1")
    assert ids(listed(api, queue="brand-new-queue")) == ["t1"]
    assert listed(api, queue="another-one") == []


def test_every_form_of_a_project_names_the_same_queue(api: Any) -> None:
    insert(api, project="s~demo-app", id="t1")
    for project in ("demo-app", "e~demo-app", "dev~demo-app", "s~demo-app"):
        task = api.tasks().get(project=project, taskqueue=QUEUE, task="t1").execute()
        assert task["queueName"] == f"projects/{project}/taskqueues/{QUEUE}"
    [leased] = lease(api, project="demo-app")
    assert leased["queueName"] == f"projects/demo-app/taskqueues/{QUEUE}"
    queue = api.taskqueues().get(project="b~demo-app", taskqueue=QUEUE).execute()
    assert queue["id"] == f"projects/b~demo-app/taskqueues/{QUEUE}"


def test_domain_projects_work_escaped_or_not(bridge: BridgeServer, api: Any) -> None:
    insert(api, project="s~example.com:demo", id="t1")
    assert ids(listed(api, project="example.com:demo")) == ["t1"]
    reply = bridge.request("GET", f"/taskqueue/v1beta2/projects/example.com%3Ademo/taskqueues/{QUEUE}/tasks/t1")
    assert reply.status == 200
    assert reply.json["queueName"] == f"projects/example.com:demo/taskqueues/{QUEUE}"
    # A different application is a different queue.
    assert listed(api, project="other-app") == []


def test_a_malformed_project_is_refused(api: Any) -> None:
    error_of(api.tasks().list(project="bad project!", taskqueue=QUEUE), 400, "invalid")


@pytest.mark.parametrize("project", ["p%0A", "s~p%0A", "example.com%3Ap%0A"])
def test_a_project_ending_in_a_newline_is_refused(bridge: BridgeServer, project: str) -> None:
    reply = bridge.request("GET", f"/taskqueue/v1beta2/projects/{project}/taskqueues/{QUEUE}/tasks")
    assert reply.status == 400
    assert reply.json["error"]["errors"][0]["location"] == "project"


@pytest.mark.parametrize(("queue", "task"), [("bad queue!", "t1"), ("q" * 101, "t1"), (QUEUE, "bad.name")])
def test_the_server_not_the_client_refuses_a_malformed_queue_or_task_name(api: Any, queue: str, task: str) -> None:
    # The Discovery document carries no pattern, as Google's did not: the client sends
    # the call (it would raise TypeError before sending if there were one).
    envelope = error_of(api.tasks().get(project=PROJECT, taskqueue=queue, task=task), 400, "invalid")
    assert envelope["error"]["errors"][0]["location"] == ("task" if queue == QUEUE else "taskqueue")


def test_with_a_project_allow_list_other_projects_are_404_and_get_no_queue(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    bridge = make_bridge(projects=("demo-app",))
    api = bridge.api()
    insert(api, id="t1")  # s~demo-app: the partition prefix does not matter
    envelope = error_of(api.tasks().insert(project="s~other-app", taskqueue=QUEUE, body={"id": "t1"}), 404, "notFound")
    assert envelope["error"]["errors"][0]["location"] == "project"
    error_of(api.taskqueues().get(project="other-app", taskqueue=QUEUE), 404, "notFound")
    assert ids(lease(api)) == ["t1"]


def test_queue_yaml_application_limits_the_projects_served(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Path]
) -> None:
    path = queue_file("application: s~demo-app\nqueue:\n- name: work\n  mode: pull\n")
    api = make_bridge(queues=path).api()
    insert(api, id="t1")
    error_of(api.tasks().insert(project="intruder", taskqueue=QUEUE, body={"id": "t2"}), 404, "notFound")


def test_queue_yaml_application_and_projects_setting_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "queue.yaml"
    path.write_text("application: demo-app\nqueue:\n- name: work\n  mode: pull\n")
    assert QueueRegistry.from_file(path, projects=("s~demo-app",)).projects == {"demo-app"}
    with pytest.raises(QueueFileError, match="contradicts --projects"):
        QueueRegistry.from_file(path, projects=("other-app",))
