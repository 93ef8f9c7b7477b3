"""The two dialects of the v1 API, side by side on one backend: Google's (the default)
and legacy-local, for workers written against the local stand-ins of 2017.

Each test starts one bridge of each dialect on the same backend and drives both with
the Google API client built from the document each serves.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import NewTask, Queue
from backends.limits import DIALECT_NAMES
from backends.redis.memory import MemoryBackend
from bridge import create_app
from bridge.access.queues import QueueFileError, QueueRegistry
from bridge.server.serving import startup_line
from bridge.settings import Settings, SettingsError
from bridge.taskqueue.dialect import DEFAULT_DIALECT, DIALECTS, LEGACY_LOCAL
from tests.support.api import PROJECT, QUEUE, now_us
from tests.support.http import BridgeServer, Clients, error_of

#: Bytes whose base64 holds every character the two alphabets write differently.
PAYLOAD = b"\xfb\xff\xfe render?url=/a"
STANDARD = base64.b64encode(PAYLOAD).decode()
URLSAFE = base64.urlsafe_b64encode(PAYLOAD).decode()
assert "+" in STANDARD and "/" in STANDARD and "-" in URLSAFE and "_" in URLSAFE

Apis = tuple[Any, Any]
MIB = 1024 * 1024


@pytest.fixture
def apis(make_bridge: Callable[..., Clients]) -> Apis:
    """Clients of a google bridge and of a legacy-local one on the same backend."""
    return make_bridge().api(), make_bridge(dialect="legacy-local").api()


def _lease(api: Any, queue: str = QUEUE, project: str = PROJECT, **options: Any) -> dict[str, Any]:
    request = api.tasks().lease(project=project, taskqueue=queue, numTasks=10, leaseSecs=60, **options)
    result: dict[str, Any] = request.execute()
    return result


def _list(api: Any, queue: str = QUEUE) -> dict[str, Any]:
    result: dict[str, Any] = api.tasks().list(project=PROJECT, taskqueue=queue).execute()
    return result


def _insert(api: Any, queue: str = QUEUE, **task: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.tasks().insert(project=PROJECT, taskqueue=queue, body=task).execute()
    return result


# Pub/Sub names no task at insert and lists nothing: each point is shown through leases
# first, where every backend can, and through the other methods in tests of their own.

# -- 1. items --------------------------------------------------------------------


def test_an_empty_lease_has_no_items_in_google_and_empty_items_in_legacy_local(apis: Apis) -> None:
    google, legacy = apis
    assert _lease(google) == {"kind": "taskqueue#tasks"}
    assert _lease(legacy) == {"kind": "taskqueue#tasks", "items": []}


def test_an_empty_list_has_no_items_in_google_and_empty_items_in_legacy_local(apis: Apis) -> None:
    google, legacy = apis
    assert _list(google) == {"kind": "taskqueues#tasks"}
    assert _list(legacy) == {"kind": "taskqueue#tasks", "items": []}


# -- 2. base64 -------------------------------------------------------------------


def test_google_refuses_standard_base64_and_stores_nothing(apis: Apis) -> None:
    google, _ = apis
    refused = google.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"payloadBase64": STANDARD})
    assert "URL-safe" in error_of(refused, 400, "invalid")["error"]["message"]
    assert "items" not in _lease(google)


def test_legacy_local_takes_either_alphabet_and_answers_in_the_standard_one(apis: Apis) -> None:
    google, legacy = apis
    for text in (STANDARD, URLSAFE):
        assert _insert(legacy, payloadBase64=text)["payloadBase64"] == STANDARD
    leased = _lease(legacy)["items"]
    assert [task["payloadBase64"] for task in leased] == [STANDARD, STANDARD]
    # Google's dialect gives the same bytes in the URL-safe alphabet.
    _insert(legacy, payloadBase64=STANDARD)
    assert [task["payloadBase64"] for task in _lease(google)["items"]] == [URLSAFE]


def test_legacy_local_refuses_base64_that_mixes_the_alphabets(apis: Apis) -> None:
    _, legacy = apis
    mixed = base64.b64encode(b"\xfb\xff\xfe\xfb\xef\xbe").decode().replace("/", "_", 1)
    assert "+" in mixed and "_" in mixed
    error_of(legacy.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"payloadBase64": mixed}), 400, "invalid")
    assert _lease(legacy)["items"] == []


# -- 3. list kind ------------------------------------------------------------------


def test_the_list_kind_is_googles_schema_in_google_and_the_lease_kind_in_legacy_local(apis: Apis) -> None:
    google, legacy = apis
    _insert(google, payloadBase64=URLSAFE)
    assert _list(google)["kind"] == "taskqueues#tasks"
    assert _list(legacy)["kind"] == "taskqueue#tasks"
    assert _lease(legacy)["kind"] == "taskqueue#tasks"


# -- 4. int64 fields -------------------------------------------------------------


def _int64_fields(task: dict[str, Any]) -> list[Any]:
    return [task["enqueueTimestamp"], task["leaseTimestamp"]]


def _check_int64(answers: dict[str, list[dict[str, Any]]], before: int) -> None:
    for task in answers["google"]:
        assert all(isinstance(value, str) and value.isdigit() for value in _int64_fields(task)), task
    for task in answers["legacy"]:
        assert all(type(value) is int for value in _int64_fields(task)), task
        # As the 2017 workers' own tests did: arithmetic on the numbers as they come.
        assert abs(task["leaseTimestamp"] - before) < 3600 * 10**6
    assert all(type(task["retry_count"]) is int for task in answers["google"] + answers["legacy"])


def test_int64_fields_are_strings_in_google_and_numbers_in_legacy_local(apis: Apis) -> None:
    google, legacy = apis
    before = now_us()
    answers: dict[str, list[dict[str, Any]]] = {"google": [], "legacy": []}
    for name, api, text in (("google", google, URLSAFE), ("legacy", legacy, STANDARD)):
        answers[name].append(_insert(api, payloadBase64=text))
        [leased] = _lease(api)["items"]
        renewed = api.tasks().patch(
            project=PROJECT, taskqueue=QUEUE, task=leased["id"], newLeaseSeconds=120, body={"queueName": QUEUE}
        )
        answers[name] += [leased, renewed.execute()]
    _check_int64(answers, before)


def test_listed_and_read_tasks_carry_int64_fields_in_their_dialects_form(apis: Apis) -> None:
    google, legacy = apis
    before = now_us()
    _insert(google, id="g", payloadBase64=URLSAFE)
    answers: dict[str, list[dict[str, Any]]] = {"google": [], "legacy": []}
    for name, api in (("google", google), ("legacy", legacy)):
        answers[name] += _list(api)["items"]
        answers[name].append(api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="g").execute())
    _check_int64(answers, before)


def test_queue_stats_int64_fields_are_strings_in_google_and_numbers_in_legacy_local(apis: Apis) -> None:
    google, legacy = apis
    _insert(google, id="t1", payloadBase64=URLSAFE)
    _lease(google)
    stats = {
        name: api.taskqueues().get(project=PROJECT, taskqueue=QUEUE, getStats=True).execute()["stats"]
        for name, api in (("google", google), ("legacy", legacy))
    }
    assert stats["google"]["totalTasks"] == stats["legacy"]["totalTasks"] == 1
    int64 = [name for name in ("oldestTask", "leasedLastMinute", "leasedLastHour") if name in stats["google"]]
    assert "oldestTask" in int64
    for name in int64:
        assert isinstance(stats["google"][name], str)
        assert stats["legacy"][name] == int(stats["google"][name])


# -- 5. names ----------------------------------------------------------------------


def test_google_refuses_underscores_in_project_and_queue_names(apis: Apis) -> None:
    google, _ = apis
    for project, queue, location in (("test_project", QUEUE, "project"), (PROJECT, "test_queue", "taskqueue")):
        envelope = error_of(google.tasks().list(project=project, taskqueue=queue), 400, "invalid")
        assert envelope["error"]["errors"][0]["location"] == location


def test_legacy_local_serves_underscored_names(apis: Apis) -> None:
    _, legacy = apis
    body = {"payloadBase64": STANDARD, "queueName": "test_queue"}
    inserted = legacy.tasks().insert(project="b~test_project", taskqueue="test_queue", body=body).execute()
    assert inserted["queueName"] == "projects/b~test_project/taskqueues/test_queue"
    # The partition prefix still names the same queue: the 2017 workers wrote with b~ and read without.
    leased = _lease(legacy, queue="test_queue", project="test_project")["items"]
    assert [task["payloadBase64"] for task in leased] == [STANDARD]
    assert leased[0]["queueName"] == "projects/test_project/taskqueues/test_queue"


# -- what else the 2017 workers read ---------------------------------------------


def test_legacy_local_gives_an_untagged_task_an_empty_tag(apis: Apis) -> None:
    google, legacy = apis
    _insert(google, payloadBase64=URLSAFE)
    [leased] = _lease(legacy)["items"]
    assert leased["tag"] == ""
    _insert(legacy, payloadBase64=STANDARD, tag="")
    [leased] = _lease(google)["items"]
    assert "tag" not in leased


def test_legacy_local_lists_payloads_and_gives_untagged_tasks_an_empty_tag(apis: Apis) -> None:
    google, legacy = apis
    _insert(google, id="plain", payloadBase64=URLSAFE)
    _insert(google, id="tagged", payloadBase64=URLSAFE, tag="red")
    plain, tagged = _list(google)["items"]
    assert "payloadBase64" not in plain and "tag" not in plain and tagged["tag"] == "red"
    plain, tagged = _list(legacy)["items"]
    assert plain["payloadBase64"] == tagged["payloadBase64"] == STANDARD
    assert plain["tag"] == "" and tagged["tag"] == "red"
    # An empty tag is still no tag: the task leases as untagged.
    [leased] = _lease(legacy, groupByTag=True)["items"]
    assert leased["id"] == "plain" and leased["tag"] == ""


def test_everything_else_answers_alike_in_both_dialects(apis: Apis) -> None:
    google, legacy = apis
    _insert(google, id="t1", payloadBase64=URLSAFE)
    for api in apis:
        # Duplicates, unknown tasks and lost leases are the bridge's own errors in both.
        error_of(api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"id": "t1"}), 409, "duplicate")
        error_of(api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="nope"), 404, "notFound")
        stale = api.tasks().patch(project=PROJECT, taskqueue=QUEUE, task="t1", newLeaseSeconds=5, body={})
        error_of(stale, 409, "conflict")
    legacy.tasks().delete(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    error_of(google.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1"), 404, "notFound")
    # The name deleted through one dialect stays reserved in the other (its tombstone).
    error_of(google.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"id": "t1"}), 409, "duplicate")


# -- one store, two dialects -----------------------------------------------------


def test_a_task_inserted_in_one_dialect_leases_the_same_in_the_other(apis: Apis) -> None:
    google, legacy = apis
    for writer, reader, text, decode in (
        (google, legacy, URLSAFE, base64.b64decode),
        (legacy, google, STANDARD, base64.urlsafe_b64decode),
    ):
        _insert(writer, payloadBase64=text, tag="red")
        [leased] = _lease(reader)["items"]
        assert decode(leased["payloadBase64"]) == PAYLOAD
        assert leased["tag"] == "red" and leased["retry_count"] == 1


def test_a_task_inserted_in_one_dialect_reads_the_same_in_the_other(apis: Apis) -> None:
    google, legacy = apis
    eta = now_us() + 3600 * 10**6
    from_google = _insert(google, id="g", payloadBase64=URLSAFE, tag="red", leaseTimestamp=str(eta))
    from_legacy = _insert(legacy, id="l", payloadBase64=STANDARD, tag="red", leaseTimestamp=eta)
    for task_id, inserted in (("g", from_google), ("l", from_legacy)):
        seen_by_google = google.tasks().get(project=PROJECT, taskqueue=QUEUE, task=task_id).execute()
        seen_by_legacy = legacy.tasks().get(project=PROJECT, taskqueue=QUEUE, task=task_id).execute()
        assert base64.urlsafe_b64decode(seen_by_google["payloadBase64"]) == PAYLOAD
        assert base64.b64decode(seen_by_legacy["payloadBase64"], validate=True) == PAYLOAD
        assert seen_by_google["leaseTimestamp"] == str(seen_by_legacy["leaseTimestamp"]) == str(eta)
        assert seen_by_google["enqueueTimestamp"] == str(seen_by_legacy["enqueueTimestamp"])
        assert int(inserted["enqueueTimestamp"]) == seen_by_legacy["enqueueTimestamp"]
        assert seen_by_google["tag"] == seen_by_legacy["tag"] == "red"


def test_a_lease_taken_in_one_dialect_is_renewed_and_released_in_the_other(apis: Apis) -> None:
    google, legacy = apis
    _insert(google, id="g", payloadBase64=URLSAFE, tag="red")
    _insert(legacy, id="l", payloadBase64=STANDARD, tag="red")
    leased = {task["id"]: task for task in _lease(legacy, groupByTag=True, tag="red")["items"]}
    assert sorted(leased) == ["g", "l"]
    # The token as the other dialect writes it: a string where legacy-local gave a number.
    body = {"leaseTimestamp": str(leased["g"]["leaseTimestamp"]), "queueName": f"projects/{PROJECT}/taskqueues/{QUEUE}"}
    renewed = google.tasks().update(project=PROJECT, taskqueue=QUEUE, task="g", newLeaseSeconds=600, body=body)
    body["leaseTimestamp"] = renewed.execute()["leaseTimestamp"]
    released = google.tasks().patch(project=PROJECT, taskqueue=QUEUE, task="g", newLeaseSeconds=0, body=body)
    assert released.execute()["retry_count"] == 1
    [again] = _lease(google)["items"]
    assert again["id"] == "g" and again["payloadBase64"] == URLSAFE and again["retry_count"] == 2
    legacy_body = {"leaseTimestamp": int(again["leaseTimestamp"]), "queueName": QUEUE}
    legacy.tasks().patch(project=PROJECT, taskqueue=QUEUE, task="g", newLeaseSeconds=0, body=legacy_body).execute()
    assert [task["id"] for task in _lease(legacy)["items"]] == ["g"]


def test_the_dialect_is_a_setting_that_refuses_unknown_names() -> None:
    assert Settings().dialect == DEFAULT_DIALECT == "google"
    # The settings know each dialect by its names (backends.limits), the front by its Dialect.
    assert list(DIALECT_NAMES) == list(DIALECTS)
    assert all(DIALECTS[name].names is names for name, names in DIALECT_NAMES.items())
    assert Settings.from_env({"BRIDGE_DIALECT": "Legacy-Local"}).dialect == "legacy-local"
    with pytest.raises(SettingsError, match="--dialect"):
        Settings(dialect="appscale")
    with pytest.raises(SettingsError, match="--projects"):
        Settings(projects=("test_project",))
    assert Settings(projects=("test_project",), dialect="legacy-local").projects == ("test_project",)


# -- the rest of a legacy-local deployment -------------------------------------------


@pytest.fixture
def legacy_memory() -> Iterator[BridgeServer]:
    backend = MemoryBackend.from_url("memory://")
    server = BridgeServer(create_app(Settings(dialect="legacy-local"), backend=backend))
    yield server
    server.close()
    backend.close()


@pytest.mark.memory
def test_the_console_takes_the_names_its_deployment_takes(
    legacy_memory: BridgeServer, memory_server: BridgeServer
) -> None:
    path = "/console/api/projects/test_project/queues/test_queue/tasks"
    body = {"id": "t1", "payloadBase64": STANDARD}
    legacy_memory.api().tasks().insert(project="b~test_project", taskqueue="test_queue", body=body).execute()
    reply = legacy_memory.request("GET", path)
    assert reply.status == 200 and [task["id"] for task in reply.json["tasks"]] == ["t1"]
    assert memory_server.request("GET", path).status == 400


@pytest.mark.memory
def test_the_v2beta2_front_keeps_cloud_tasks_names_and_lists_only_those(legacy_memory: BridgeServer) -> None:
    from google.api_core import exceptions as gexc

    from tests.support.v2beta2 import rest_client

    for queue in ("test_queue", "work"):
        _insert(legacy_memory.api(), queue, payloadBase64=STANDARD)
    client = rest_client(legacy_memory.url)
    listed = client.list_queues(parent="projects/demo-app/locations/here", retry=None)
    assert [queue.name.rsplit("/", 1)[1] for queue in listed] == ["work"]
    with pytest.raises(gexc.BadRequest, match="QUEUE: 1-100 letters, digits or '-'"):
        client.get_queue(name="projects/demo-app/locations/here/queues/test_queue", retry=None)


@pytest.mark.memory
def test_a_batch_holds_a_legacy_local_lists_payloads_within_its_budget() -> None:
    """A list carries payloads in legacy-local: a list part reserves what a task with a
    1 MiB payload weighs, as a get does, so that the batch's answer stays within its
    budget (a part that cannot fit is refused, 400 responseTooLarge, without running)."""
    budget = 4 * MIB
    backend = MemoryBackend.from_url("memory://")
    backend.insert(Queue("test_project", "test_queue"), NewTask("large", b"x" * MIB))
    server = BridgeServer(create_app(Settings(dialect="legacy-local", max_response_bytes=budget), backend=backend))
    try:
        path = "/taskqueue/v1beta2/projects/test_project/taskqueues/test_queue/tasks"
        part = f"--b\r\nContent-Type: application/http\r\n\r\nGET {path} HTTP/1.1\r\n"
        kind = {"Content-Type": "multipart/mixed; boundary=b"}
        reply = server.request("POST", "/batch", (part * 20 + "--b--\r\n").encode(), kind)
        assert reply.status == 200 and len(reply.body) <= budget
        answered = reply.body.count(b"HTTP/1.1 200 ")
        assert 1 <= answered <= 3 and reply.body.count(b"HTTP/1.1 400 ") == 20 - answered
        assert b'"responseTooLarge"' in reply.body
    finally:
        server.close()
        backend.close()


def test_queue_yaml_takes_underscored_names_only_in_legacy_local(queue_file: Callable[[str], Path]) -> None:
    path = queue_file("application: test_project\nqueue:\n- name: test_queue\n  mode: pull\n")
    with pytest.raises(QueueFileError, match="test_queue"):
        QueueRegistry.from_file(path)
    registry = QueueRegistry.from_file(path, names=LEGACY_LOCAL.names)
    assert registry.resolve("test_queue").name == "test_queue"
    assert registry.projects == {"test_project"}


def test_the_start_line_says_when_the_dialect_is_not_googles() -> None:
    assert "dialect" not in startup_line(Settings(), "answering")
    assert "API (dialect legacy-local) http://" in startup_line(Settings(dialect="legacy-local"), "answering")
