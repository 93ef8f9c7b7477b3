"""Every row of the error table: status, reason, Google's envelope, and nothing changed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from backends.base import Backend
from backends.errors import ApiError
from bridge import create_app
from bridge.settings import Settings
from tests.support.api import PROJECT, QUEUE, insert, lease
from tests.support.harness import Harness
from tests.support.http import BridgeServer, serving

BASE = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}"
JSON = {"Content-Type": "application/json"}

# (method, path, body, status, reason, location)
BAD_REQUESTS = [
    ("POST", "/tasks", b'{"id": "x",', 400, "parseError", None),
    ("POST", "/tasks", b"[1, 2", 400, "parseError", None),
    ("POST", "/tasks/t1?newLeaseSeconds=10", b"{nope}", 400, "parseError", None),
    ("POST", "/tasks", b"", 400, "required", "body"),
    ("POST", "/tasks/lease?leaseSecs=10", None, 400, "required", "numTasks"),
    ("POST", "/tasks/lease?numTasks=1", None, 400, "required", "leaseSecs"),
    ("POST", "/tasks/t1", b"{}", 400, "required", "newLeaseSeconds"),
    ("PATCH", "/tasks/t1", b"{}", 400, "required", "newLeaseSeconds"),
    ("POST", "/tasks/lease?numTasks=0&leaseSecs=10", None, 400, "invalid", "numTasks"),
    ("POST", "/tasks/lease?numTasks=1001&leaseSecs=10", None, 400, "invalid", "numTasks"),
    ("POST", "/tasks/lease?numTasks=ten&leaseSecs=10", None, 400, "invalid", "numTasks"),
    ("POST", "/tasks/lease?numTasks=1&leaseSecs=-1", None, 400, "invalid", "leaseSecs"),
    ("POST", "/tasks/lease?numTasks=1&leaseSecs=604801", None, 400, "invalid", "leaseSecs"),
    ("POST", "/tasks/lease?numTasks=1&leaseSecs=1.5", None, 400, "invalid", "leaseSecs"),
    ("POST", "/tasks/lease?numTasks=1&leaseSecs=10&groupByTag=maybe", None, 400, "invalid", "groupByTag"),
    ("POST", "/tasks/lease?numTasks=1&leaseSecs=10&tag=a", None, 400, "invalid", "tag"),
    ("POST", "/tasks/lease?numTasks=1&leaseSecs=10&groupByTag=true&tag=" + "x" * 501, None, 400, "invalid", "tag"),
    ("POST", "/tasks/t1?newLeaseSeconds=604801", b"{}", 400, "invalid", "newLeaseSeconds"),
    ("POST", "/tasks/t1?newLeaseSeconds=10", b'{"leaseTimestamp": "soon"}', 400, "invalid", "leaseTimestamp"),
    ("POST", "/tasks/t1?newLeaseSeconds=10", b"[]", 400, "invalid", "body"),
    ("POST", "/tasks", b'"a string"', 400, "invalid", "body"),
    ("POST", "/tasks", b'{"payloadBase64": 12}', 400, "invalid", "payloadBase64"),
    ("POST", "/tasks", b'{"tag": ["a"]}', 400, "invalid", "tag"),
    ("POST", "/tasks", b'{"id": "a b"}', 400, "invalid", "id"),
    ("POST", "/tasks", b'{"leaseTimestamp": true}', 400, "invalid", "leaseTimestamp"),
    ("GET", "/tasks?fields=" + "a/" * 1000 + "b", None, 400, "invalid", "fields"),
    ("GET", "/tasks?fields=" + "a(" * 1000 + "b" + ")" * 1000, None, 400, "invalid", "fields"),
    ("GET", "/tasks/" + "x" * 501, None, 400, "invalid", "task"),
    ("GET", "/tasks/bad.name", None, 400, "invalid", "task"),
    # Every rule matches the whole value: Python's "$" would also accept a final newline.
    ("POST", "/tasks", b'{"id": "nl\\n"}', 400, "invalid", "id"),
    ("POST", "/tasks", b'{"leaseTimestamp": "1\\n"}', 400, "invalid", "leaseTimestamp"),
    ("POST", "/tasks", b'{"payloadBase64": "YQ==\\n"}', 400, "invalid", "payloadBase64"),
    ("POST", "/tasks", b'{"queueName": "projects/demo-app/taskqueues/work\\n"}', 400, "invalid", "queueName"),
    ("POST", "%0A/tasks", b"{}", 400, "invalid", "taskqueue"),
    ("GET", "/tasks/t1%0A", None, 400, "invalid", "task"),
    ("POST", "/tasks/lease?numTasks=1%0A&leaseSecs=10", None, 400, "invalid", "numTasks"),
    ("POST", "/tasks/t1?newLeaseSeconds=10%0A", b"{}", 400, "invalid", "newLeaseSeconds"),
    ("GET", "/tasks/nope", None, 404, "notFound", "task"),
    ("DELETE", "/tasks/nope", None, 404, "notFound", "task"),
    ("GET", "/nothing/here", None, 404, "notFound", None),
    ("PUT", "/tasks/t1", b"{}", 405, "httpMethodNotAllowed", None),
    ("DELETE", "", None, 405, "httpMethodNotAllowed", None),
    ("POST", "/tasks", b'{"id": "t1"}', 409, "duplicate", "id"),
    ("POST", "/tasks/t1?newLeaseSeconds=10", b"{}", 409, "conflict", "task"),
]


def _snapshot(api: Any) -> Any:
    listing = api.tasks().list(project=PROJECT, taskqueue=QUEUE).execute().get("items", [])
    counts = api.taskqueues().get(project=PROJECT, taskqueue=QUEUE, getStats=True).execute()["stats"]
    # Cloud Tasks keeps no lease counts; there leasedLastHour is left out, not invented.
    return listing, counts["totalTasks"], counts.get("leasedLastHour")


@pytest.mark.parametrize(
    "method, path, body, status, reason, location",
    BAD_REQUESTS,
    ids=[f"{status}-{reason}-{method}{path[:40]}" for method, path, _, status, reason, _ in BAD_REQUESTS],
)
def test_a_bad_request_gets_its_envelope_and_changes_nothing(
    bridge: BridgeServer,
    api: Any,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    reason: str,
    location: str | None,
) -> None:
    insert(api, id="t1")
    before = _snapshot(api)
    reply = bridge.request(method, BASE + path, body, JSON)
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    error = reply.json["error"]
    assert error["code"] == status
    [detail] = error["errors"]
    assert detail["reason"] == reason
    assert detail["domain"] == "global"
    assert detail["message"] == error["message"] and error["message"]
    assert detail.get("location") == location
    if location:
        assert detail["locationType"] == "parameter"
    assert _snapshot(api) == before


def test_a_deep_fields_selector_tunnelled_in_a_form_body_is_400(bridge: BridgeServer) -> None:
    headers = {"X-HTTP-Method-Override": "GET", "Content-Type": "application/x-www-form-urlencoded"}
    reply = bridge.request("POST", BASE + "/tasks", "fields=" + "a/" * 1000 + "b", headers)
    assert reply.status == 400, reply.body
    assert reply.json["error"]["errors"][0]["location"] == "fields"


def test_the_google_client_sees_the_envelope_as_an_http_error(api: Any) -> None:
    from googleapiclient.errors import HttpError

    with pytest.raises(HttpError) as caught:
        api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="missing").execute()
    assert caught.value.resp.status == 404
    assert caught.value.reason == "Task not found: missing"
    assert caught.value.error_details[0]["reason"] == "notFound"


def test_a_body_over_the_limit_is_413_and_stores_nothing(make_bridge: Callable[..., BridgeServer]) -> None:
    server = make_bridge(max_body_bytes=1000)
    reply = server.request("POST", BASE + "/tasks", b'{"payloadBase64": "' + b"A" * 2000 + b'"}', JSON)
    assert reply.status == 413
    assert reply.json["error"]["errors"][0]["reason"] == "requestEntityTooLarge"
    assert lease(server.api()) == []


class _Broken(Backend):
    """A backend whose every call fails in a way no backend should: a bug."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail: redis://admin:hunter2@10.0.0.7")

    insert = get = list_tasks = delete = lease = modify_lease = queue_info = _fail
    list_queues = create_queue = update_queue = delete_queue = purge_queue = _fail
    pause_queue = resume_queue = list_tasks_page = dead_letters = clear_tombstones = activity = _fail

    def ping(self) -> None:
        pass

    def close(self) -> None:
        self.backend.close()


def test_an_unexpected_failure_is_a_500_envelope_that_leaks_nothing(harness: Harness) -> None:
    app = create_app(Settings(backend=harness.url), backend=_Broken(harness.backend))
    with serving(app) as server:
        reply = server.request("GET", BASE + "/tasks/t1")
    assert reply.status == 500
    error = reply.json["error"]
    assert error["errors"][0]["reason"] == "backendError"
    assert b"hunter2" not in reply.body and b"Traceback" not in reply.body and b"secret" not in reply.body


def test_the_error_tree_drawn_in_the_docstring_is_the_class_tree() -> None:
    import backends.errors
    import bridge.errors

    rows = re.findall(r"^    ([│├└─ ]*)(\w+) +(\d{3}) (\w+)", bridge.errors.__doc__ or "", re.MULTILINE)
    drawn: list[type[ApiError]] = []
    #: depth in the drawing -> the class drawn last at that depth.
    parents: dict[int, type[ApiError]] = {}
    for prefix, name, status, reason in rows:
        cls = getattr(bridge.errors, name, None) or getattr(backends.errors, name)
        assert (cls.status, cls.reason) == (int(status), reason), name
        depth = len(prefix) // 4
        assert cls is ApiError if depth == 0 else cls.__bases__ == (parents[depth - 1],), name
        parents[depth] = cls
        drawn.append(cls)
    defined = {
        cls
        for module in (backends.errors, bridge.errors)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, ApiError)
    }
    assert set(drawn) == defined


def test_flasks_own_errors_become_the_api_classes_with_their_headers() -> None:
    client = create_app(Settings()).test_client()
    wrong_verb = client.put(BASE + "/tasks/t1")
    assert wrong_verb.json is not None
    assert (wrong_verb.status_code, wrong_verb.json["error"]["errors"][0]["reason"]) == (405, "httpMethodNotAllowed")
    assert set(wrong_verb.headers["Allow"].split(", ")) >= {"GET", "POST", "PATCH", "DELETE"}
    nowhere = client.get("/nothing/here")
    assert nowhere.json is not None
    assert (nowhere.status_code, nowhere.json["error"]["errors"][0]["reason"]) == (404, "notFound")


@pytest.mark.parametrize("host", ["a b", "evil.example/../x", "x:port", '"><script>', "[zz]:1"])
def test_a_host_header_that_is_not_host_and_port_is_400(bridge: BridgeServer, host: str) -> None:
    reply = bridge.request("GET", "/discovery/v1/apis/taskqueue/v1beta2/rest", headers={"Host": host})
    assert reply.status == 400, reply.body
    assert reply.json["error"]["errors"][0]["location"] == "Host"


@pytest.mark.parametrize("host", ["bridge:8080", "127.0.0.1:9", "[::1]:8080", "tq.example.com"])
def test_a_well_formed_host_header_names_the_discovery_root(bridge: BridgeServer, host: str) -> None:
    reply = bridge.request("GET", "/discovery/v1/apis/taskqueue/v1beta2/rest", headers={"Host": host})
    assert reply.status == 200
    assert reply.json["rootUrl"] == f"http://{host}/"
