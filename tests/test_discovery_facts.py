"""The served Discovery document against the facts of Google's own (tests/support/google_facts.py).

A client built from either must behave the same: same methods, paths and parameters,
no rule the client would enforce locally that Google's document did not have. The whole
HTTP contract suite also runs with clients built from Google's facts (the
``memory-google-document`` variant in tests/conftest.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError

from bridge.client import authorized_http
from tests.support import google_facts
from tests.support.api import PROJECT, QUEUE, insert, listed
from tests.support.harness import Variant
from tests.support.http import BridgeServer, error_of

pytestmark = pytest.mark.memory


@pytest.fixture
def variant() -> Variant:
    """The document does not depend on the backend."""
    return Variant("memory")


def served_document(bridge: BridgeServer) -> dict[str, Any]:
    reply = bridge.request("GET", "/discovery/v1/apis/taskqueue/v1beta2/rest")
    assert reply.status == 200
    document: dict[str, Any] = reply.json
    return document


def test_the_served_document_has_the_client_visible_facts_of_googles(bridge: BridgeServer) -> None:
    assert google_facts.differences(served_document(bridge)) == []


def test_the_only_intended_differences_are_the_urls_and_the_scopes(bridge: BridgeServer) -> None:
    document = served_document(bridge)
    assert document["rootUrl"] == bridge.url + "/"
    assert document["baseUrl"] == bridge.url + "/" + google_facts.SERVICE["servicePath"]
    # No scopes: Google's client then asks for no credentials.
    assert not document.get("auth", {}).get("oauth2", {}).get("scopes")
    methods = [m for r in document["resources"].values() for m in r["methods"].values()]
    assert not any(m.get("scopes") for m in methods)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to one value of a document, by a path of keys."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target = document
        for key in parents:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value

    return change


_LEASE = "resources/tasks/methods/lease"


@pytest.mark.parametrize(
    "change",
    [
        _set("batchPath", "batch/other"),
        _set("servicePath", "taskqueue/v1/"),
        _set(f"{_LEASE}/path", "{project}/taskqueues/{taskqueue}/lease"),
        _set(f"{_LEASE}/httpMethod", "GET"),
        _set(f"{_LEASE}/parameterOrder", ["project", "taskqueue"]),
        _set(f"{_LEASE}/response", {"$ref": "Task"}),
        _set(f"{_LEASE}/parameters/numTasks/format", "int64"),
        _set(f"{_LEASE}/parameters/tag/repeated", True),
        _set(f"{_LEASE}/parameters/tag/pattern", "^[a-z]+$"),
        _set(f"{_LEASE}/parameters/groupByTag/required", True),
        _set(f"{_LEASE}/parameters/leaseSecs/location", "path"),
        _set(f"{_LEASE}/parameters/extra", {"type": "string", "location": "query"}),
        _set(f"{_LEASE}/parameters/tag", None),
        _set(f"{_LEASE}/supportsMediaUpload", True),
        _set("resources/tasks/methods/purge", {"id": "taskqueue.tasks.purge", "path": "x", "httpMethod": "POST"}),
        _set("parameters/alt/enum", ["json", "proto"]),
        _set("parameters/trace", {"type": "string", "location": "query"}),
        _set("schemas/Task/properties/retry_count/format", "int64"),
        _set("schemas/Task/properties/extra", {"type": "string"}),
        _set("schemas/TaskQueue/properties/stats/properties/totalTasks/type", "string"),
        _set("schemas/Tasks/properties/items/items", {"$ref": "TaskQueue"}),
        _set("schemas/Extra", {"id": "Extra", "type": "object", "properties": {}}),
    ],
    ids=lambda change: "",
)
def test_the_facts_check_notices_every_kind_of_client_visible_change(change: Callable[[dict[str, Any]], None]) -> None:
    document = google_facts.document("http://127.0.0.1:1/")
    assert google_facts.differences(document) == []
    changed = copy.deepcopy(document)
    change(changed)
    assert google_facts.differences(changed) != []


def test_descriptions_defaults_and_ranges_are_not_differences() -> None:
    document = google_facts.document("http://127.0.0.1:1/")
    lease = document["resources"]["tasks"]["methods"]["lease"]
    lease["description"] = "Leases tasks."
    lease["parameters"]["numTasks"].update(minimum="1", maximum="1000", description="How many.")
    document["schemas"]["Task"]["properties"]["kind"]["default"] = "taskqueues#task"
    assert google_facts.differences(document) == []


@pytest.fixture
def google_api(bridge: BridgeServer) -> Any:
    """A client that knows only what Google's document said, pointed at the bridge."""
    document = google_facts.document(bridge.url + "/")
    return build_from_document(document, http=authorized_http(bridge.token))


BAD_QUEUES = ["test_queue", "has space", "q" * 101, "ünï", "dot.ted"]


def _calls(api: Any, queue: str, task: str) -> list[Any]:
    tasks = api.tasks()
    where = {"project": PROJECT, "taskqueue": queue}
    return [
        api.taskqueues().get(**where, getStats=True),
        tasks.insert(**where, body={"payloadBase64": "eA=="}),
        tasks.lease(**where, numTasks=1, leaseSecs=60),
        tasks.list(**where),
        tasks.get(**where, task=task),
        tasks.update(**where, task=task, newLeaseSeconds=60, body={}),
        tasks.patch(**where, task=task, newLeaseSeconds=60, body={}),
        tasks.delete(**where, task=task),
    ]


def _outcome(request: Any) -> tuple[int, str]:
    """Status and reason of a failed call, or 200 and the kind of a result (delete's is empty).

    A call the client refuses locally (TypeError) fails the test instead.
    """
    try:
        result = request.execute()
    except HttpError as error:
        return error.resp.status, json.loads(error.content)["error"]["errors"][0]["reason"]
    return 200, result.get("kind", "") if isinstance(result, dict) else ""


@pytest.mark.parametrize("queue", BAD_QUEUES)
def test_a_bad_queue_name_reaches_the_server_and_is_a_400(google_api: Any, api: Any, queue: str) -> None:
    for client in (google_api, api):
        for request in _calls(client, queue, "t1"):
            status, reason = _outcome(request)
            assert (status, reason) == (400, "invalid"), request.uri


@pytest.mark.parametrize("task", ["has space", "x" * 501, "dot.ted"])
def test_a_bad_task_name_reaches_the_server_and_is_answered_the_same(google_api: Any, api: Any, task: str) -> None:
    insert(api, id="t1")
    by_google = [_outcome(request) for request in _calls(google_api, QUEUE, task)[4:]]
    by_served = [_outcome(request) for request in _calls(api, QUEUE, task)[4:]]
    assert by_google == by_served
    assert all(status == 400 for status, _ in by_google), by_google
    assert [task["id"] for task in listed(api)] == ["t1"]


def test_both_clients_get_the_same_answers_to_every_method(google_api: Any, api: Any) -> None:
    outcomes = []
    # Each client on a queue of its own, from the same state.
    for queue, client in (("by-google", google_api), ("by-served", api)):
        insert(client, queue=queue, id="t1")
        outcomes.append([_outcome(request) for request in _calls(client, queue, "t1")])
    assert outcomes[0] == outcomes[1]
    # get, insert, lease, list, get and delete succeed (update and patch follow the lease rules).
    kinds = ["taskqueues#taskqueue", "taskqueues#task", "taskqueue#tasks", "taskqueues#tasks", "taskqueues#task"]
    assert outcomes[0][:5] == [(200, kind) for kind in kinds]
    assert outcomes[0][-1] == (200, "")


def test_both_clients_batch_at_googles_batch_path(google_api: Any, api: Any) -> None:
    errors: dict[str, HttpError | None] = {}
    for number, client in enumerate((google_api, api)):
        batch = client.new_batch_http_request(callback=lambda rid, response, exc: errors.update({rid: exc}))
        tasks = client.tasks()
        batch.add(tasks.insert(project=PROJECT, taskqueue=QUEUE, body={"id": f"b{number}"}), request_id=f"{number}")
        batch.add(tasks.get(project=PROJECT, taskqueue="bad_name", task="t"), request_id=f"{number}-bad")
        batch.execute()
        assert errors[f"{number}"] is None
        refused = errors[f"{number}-bad"]
        assert refused is not None and refused.resp.status == 400
    assert sorted(task["id"] for task in listed(api)) == ["b0", "b1"]
    error_of(api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="missing"), 404, "notFound")
