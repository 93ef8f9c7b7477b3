"""Issue 19's findings, each reproduced: the gate holds the v1 API's protections on every front.

Allow-list on v2beta2 and the console, response budgets before work (v2beta2 leases and
lists, batches), no 5xx for hostile input, the console's signed session, gRPC deadlines,
request ids, logs and counts. The cross-surface suite (tests/test_surfaces.py) runs the
policies against every route and RPC; these tests show each finding in detail.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2
from prometheus_client import REGISTRY
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from backends.base import NewTask, Queue
from backends.redis.memory import MemoryBackend
from bridge import create_app
from bridge.access.auth import hash_token
from bridge.cloudtasks.rest import ROUTES
from bridge.settings import Settings
from tests.conftest import unavailable
from tests.support.api import b64
from tests.support.http import BridgeServer, Reply
from tests.support.surfaces import rest_path
from tests.support.v2beta2 import Target, front_target, refused

pytestmark = pytest.mark.memory

Code = grpc.StatusCode
FULL = ct.Task.View.FULL
MIB = 1024 * 1024
V1 = "/taskqueue/v1beta2/projects/s~app/taskqueues"
LOCATION = "projects/app/locations/us-central1"


@pytest.fixture
def memory() -> Iterator[MemoryBackend]:
    backend = MemoryBackend.from_url("memory://")
    yield backend
    backend.close()


def _targets(app: Any) -> Iterator[Target]:
    for transport in ("grpc", "rest"):
        target = front_target(transport, app, transport, lambda us: None)
        try:
            yield target
        finally:
            target.close()


# -- 1. --projects on v2beta2 and the console ----------------------------------------


def test_a_project_not_served_is_not_found_on_every_v2beta2_call(memory: MemoryBackend) -> None:
    app = create_app(Settings(projects=("app",)), backend=memory)
    memory.insert(Queue("other", "q"), NewTask("secret", b"other's"))
    other = "projects/other/locations/l/queues/q"
    task = ct.Task(pull_message=ct.PullMessage(payload=b"x"))
    lease = ct.LeaseTasksRequest(parent=other, max_tasks=1, lease_duration=duration_pb2.Duration(seconds=9))
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_queue", {"name": other}),
        ("create_task", {"parent": other, "task": task}),
        ("list_tasks", {"parent": other}),
        ("list_queues", {"parent": "projects/other/locations/l"}),
        ("lease_tasks", {"request": lease}),
        ("get_task", {"name": f"{other}/tasks/secret"}),
        ("purge_queue", {"name": other}),
        ("delete_queue", {"name": other}),
    ]
    for v2 in _targets(app):
        for rpc, arguments in calls:
            refused(v2, Code.NOT_FOUND, functools.partial(getattr(v2.client, rpc), **arguments, retry=None))
        v2.client.create_task(parent=f"{LOCATION}/queues/q", task=task, retry=None)
    assert [t.id for t in memory.list_tasks(Queue("other", "q"))] == ["secret"]
    assert len(memory.list_tasks(Queue("app", "q"))) == 2


def test_the_console_shows_and_touches_no_project_outside_the_allow_list(memory: MemoryBackend) -> None:
    memory.insert(Queue("other", "q"), NewTask("secret", b"other's"))
    memory.insert(Queue("app", "q"), NewTask("mine", b"x"))
    client = create_app(Settings(projects=("app",)), backend=memory).test_client()
    assert [row["project"] for row in client.get("/console/api/queues").json["queues"]] == ["app"]  # type: ignore[index]
    assert b"other" not in client.get("/console/").data
    for path in (
        "/console/api/queues?project=other",
        "/console/api/projects/other/queues/q",
        "/console/api/projects/other/queues/q/tasks",
        "/console/api/projects/s~other/queues/q/dead-letters",
        "/console/?project=other",
        "/console/projects/other/queues/q",
        "/console/projects/other/queues/q/tasks/secret",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post("/console/api/projects/other/queues/q/actions/purge", json={}).status_code == 404
    assert [t.id for t in memory.list_tasks(Queue("other", "q"))] == ["secret"]


# -- 2. response budgets ---------------------------------------------------------------


def _fill(backend: MemoryBackend, queue: Queue, count: int, size: int = MIB) -> None:
    for n in range(count):
        backend.insert(queue, NewTask(f"big{n:02d}", bytes([n]) * size))


def test_v2beta2_leases_and_full_lists_stay_under_the_response_budget(memory: MemoryBackend) -> None:
    budget = 3 * MIB
    app = create_app(Settings(max_response_bytes=budget), backend=memory)
    queue = Queue("app", "big")
    name = f"{LOCATION}/queues/big"
    _fill(memory, queue, 8)
    seen: set[str] = set()
    for v2 in _targets(app):
        request = ct.LeaseTasksRequest(
            parent=name, max_tasks=100, lease_duration=duration_pb2.Duration(seconds=600), response_view=FULL
        )
        reply = v2.client.lease_tasks(request=request, retry=None)
        assert 1 <= len(reply.tasks) <= 2 and ct.LeaseTasksResponse.pb(reply).ByteSize() <= budget
        pages, token = [], ""
        while True:
            asked = {"parent": name, "response_view": FULL, "page_token": token}
            page = next(v2.client.list_tasks(request=asked).pages)
            assert json.dumps(ct.ListTasksResponse.to_dict(page)).__len__() <= budget
            pages.append([task.name.rsplit("/", 1)[1] for task in page.tasks])
            token = page.next_page_token
            if not token:
                break
        assert len(pages) > 1 and sorted(sum(pages, [])) == [f"big{n:02d}" for n in range(8)]
        seen.update(task.name for task in reply.tasks)
    # Tasks past the budget were not leased: 4 of 8 at most, the others still available.
    assert len(seen) <= 4 and sum(task.retry_count == 0 for task in memory.list_tasks(queue)) >= 4


def test_a_lease_part_leases_what_fits_what_the_batch_has_left(memory: MemoryBackend) -> None:
    budget = 5 * MIB // 2
    server = BridgeServer(create_app(Settings(max_response_bytes=budget), backend=memory))
    try:
        _fill(memory, Queue("app", "big"), 6, size=MIB // 4)
        memory.insert(Queue("app", "big"), NewTask("large", b"x" * MIB))
        get = f"GET {V1}/big/tasks/large HTTP/1.1"
        lease = f"POST {V1}/big/tasks/lease?numTasks=100&leaseSecs=60 HTTP/1.1"
        reply, answers = _batch(server, [get, lease])
        assert len(reply.body) <= budget and [_status(answer) for answer in answers] == [200, 200]
        # What the get left (about 1.1 MiB) is less than a 1 MiB task would weigh, but
        # holds three tasks of 0.33 MiB in base64: those are leased, not all six.
        leased = set(re.findall(rb'"id": ?"(big\d+)"', answers[1]))
        assert 1 <= len(leased) <= 3
        assert sum(task.retry_count > 0 for task in memory.list_tasks(Queue("app", "big"))) == len(leased)
    finally:
        server.close()


def test_a_v2beta2_list_page_holds_as_many_small_tasks_as_fit(memory: MemoryBackend) -> None:
    budget = 3 * MIB
    app = create_app(Settings(max_response_bytes=budget), backend=memory)
    _fill(memory, Queue("app", "big"), 40, size=64 * 1024)
    for v2 in _targets(app):
        asked = {"parent": f"{LOCATION}/queues/big", "response_view": FULL}
        page = next(v2.client.list_tasks(request=asked).pages)
        # 40 tasks of 64 KiB are 3.4 MiB in base64: one page holds most, not a page of 2
        # sized for 1 MiB payloads.
        assert 20 <= len(page.tasks) < 40 and page.next_page_token


def _batch(server: BridgeServer, requests: list[str]) -> tuple[Reply, list[bytes]]:
    parts = "".join(
        f"--b\r\nContent-Type: application/http\r\nContent-ID: <p{n}>\r\n\r\n{text}\r\n"
        for n, text in enumerate(requests)
    )
    kind = {"Content-Type": "multipart/mixed; boundary=b"}
    reply = server.request("POST", "/batch", (parts + "--b--\r\n").encode(), kind)
    assert reply.status == 200, reply.body[:300]
    boundary = reply.headers["Content-Type"].split("boundary=")[1]
    answers = [chunk.split(b"\r\n\r\n", 1)[1] for chunk in reply.body.split(b"--" + boundary.encode())[1:-1]]
    return reply, answers


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_sixteen_lease_parts_of_a_batch_answer_within_the_response_budget(memory: MemoryBackend) -> None:
    budget = 4 * MIB
    server = BridgeServer(create_app(Settings(max_response_bytes=budget), backend=memory))
    try:
        _fill(memory, Queue("app", "big"), 10)
        # leaseSecs=0: every part could lease the same tasks again; the budget is the batch's.
        lease = f"POST {V1}/big/tasks/lease?numTasks=1000&leaseSecs=0 HTTP/1.1"
        reply, answers = _batch(server, [lease] * 16)
        assert len(reply.body) <= budget
        statuses = [_status(answer) for answer in answers]
        # Every part runs with what the batch has left, and a part left too little leases
        # nothing: it does not even take the first task, as a lease alone would.
        assert statuses == [200] * 16, statuses
        leased = [answer.count(b'"id"') for answer in answers]
        assert leased[0] >= 1 and sum(leased) <= 3, leased
        assert sum(task.retry_count > 0 for task in memory.list_tasks(Queue("app", "big"))) == len(
            {id for answer in answers for id in re.findall(rb'"id": ?"(big\d+)"', answer)}
        )
    finally:
        server.close()


def test_two_hundred_gets_of_a_large_task_stay_within_the_budget_and_of_a_small_one_all_run(
    memory: MemoryBackend,
) -> None:
    budget = 4 * MIB
    server = BridgeServer(create_app(Settings(max_response_bytes=budget), backend=memory))
    try:
        memory.insert(Queue("app", "big"), NewTask("large", b"x" * MIB))
        memory.insert(Queue("app", "big"), NewTask("small", b"x"))
        reply, answers = _batch(server, [f"GET {V1}/big/tasks/large HTTP/1.1"] * 200)
        statuses = [_status(answer) for answer in answers]
        assert len(reply.body) <= budget and 1 <= statuses.count(200) <= 3
        assert statuses.count(400) == 200 - statuses.count(200)
        _, answers = _batch(server, [f"GET {V1}/big/tasks/small HTTP/1.1"] * 200)
        assert [_status(answer) for answer in answers] == [200] * 200
    finally:
        server.close()


# -- 4. no 5xx -----------------------------------------------------------------------

BAD_UTF8 = b'{"task": {"pullMessage": {"tag": "\xff\xfe"}}}'


def test_invalid_utf8_json_on_every_v2beta2_route_with_a_body_is_a_400(memory: MemoryBackend) -> None:
    client = create_app(Settings(), backend=memory).test_client()
    routes = [route for route in ROUTES if route.body]
    assert len(routes) >= 12
    for route in routes:
        reply = client.open(rest_path(route), method=route.verb, data=BAD_UTF8, content_type="application/json")
        assert reply.status_code == 400, (route.method, reply.data)
        assert reply.json["error"]["status"] == "INVALID_ARGUMENT"  # type: ignore[index]


@pytest.mark.parametrize("query", ["filter=x&filter.y=1", "pageSize.x=1", "pageSize=1&pageSize.x=1"])
def test_a_v2beta2_query_naming_a_field_and_its_fields_is_a_400(memory: MemoryBackend, query: str) -> None:
    client = create_app(Settings(), backend=memory).test_client()
    reply = client.get(f"/v2beta2/{LOCATION}/queues/q/tasks?{query}")
    assert reply.status_code == 400 and reply.json["error"]["status"] == "INVALID_ARGUMENT"  # type: ignore[index]


def test_a_raw_query_string_that_is_not_utf8_is_a_400_on_every_route(memory: MemoryBackend) -> None:
    app = create_app(Settings(), backend=memory)
    for path in (f"/v2beta2/{LOCATION}/queues/q/tasks", "/console/api/queues", "/console/", f"{V1}/q/tasks"):
        environ = EnvironBuilder(path=path).get_environ()
        # As gunicorn hands it over: the request line's raw bytes, as latin-1.
        environ["QUERY_STRING"] = "pageToken=\xff\xfe"
        answer = Response.from_app(app.wsgi_app, environ)
        assert answer.status_code == 400, (path, answer.data)


@pytest.mark.parametrize(
    ("part_head", "text"),
    [
        ("", "GET http://[::1/healthz HTTP/1.1"),
        ("Content-ID: <caf\u00e9>\r\n", f"GET {V1}/q/tasks HTTP/1.1"),
    ],
    ids=["bad-url", "non-ascii-content-id"],
)
def test_a_batch_part_the_answer_cannot_carry_is_a_400_for_the_batch(
    memory: MemoryBackend, part_head: str, text: str
) -> None:
    client = create_app(Settings(), backend=memory).test_client()
    body = f"--b\r\nContent-Type: application/http\r\n{part_head}\r\n{text}\r\n--b--\r\n".encode()
    reply = client.post("/batch", data=body, content_type="multipart/mixed; boundary=b")
    assert reply.status_code == 400 and reply.json["error"]["message"].startswith("Malformed batch")  # type: ignore[index]


def test_invalid_utf8_json_in_a_batch_part_is_a_4xx_in_its_part(memory: MemoryBackend) -> None:
    client = create_app(Settings(), backend=memory).test_client()
    body = b""
    for target in (f"{V1}/q/tasks", f"/v2beta2/{LOCATION}/queues/q/tasks", f"/v2beta2/{LOCATION}/queues/q:pause"):
        head = f"POST {target} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n".encode()
        body += b"--b\r\nContent-Type: application/http\r\n\r\n" + head + BAD_UTF8 + b"\r\n"
    reply = client.post("/batch", data=body + b"--b--\r\n", content_type="multipart/mixed; boundary=b")
    assert reply.status_code == 200
    # The v1 API's parse error; a part may call nothing else (v2beta2 is not batched).
    assert [line.split(b" ")[1] for line in reply.data.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")] == [
        b"400",
        b"404",
        b"404",
    ]
    assert b"parseError" in reply.data


def test_a_console_page_size_out_of_range_is_a_400(memory: MemoryBackend) -> None:
    client = create_app(Settings(), backend=memory).test_client()
    for size in ("9223372036854775807", "0", "-1", "x"):
        reply = client.get(f"/console/api/projects/app/queues/q/tasks?pageSize={size}")
        assert reply.status_code == 400 and reply.json["error"]["errors"][0]["location"] == "pageSize"  # type: ignore[index]


def test_a_sign_in_next_with_a_line_break_leads_to_the_console(memory: MemoryBackend, tmp_path: Path) -> None:
    open_client = create_app(Settings(), backend=memory).test_client()
    reply = open_client.get("/console/sign-in?next=/console/%0d%0ax")
    assert reply.status_code == 302 and reply.location == "/console/"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(ADMIN_TOKEN)} ops@example.com\n")
    secured = create_app(Settings(auth="token", tokens_file=tokens, admins=("ops@example.com",)), backend=memory)
    client = secured.test_client()
    assert client.get("/console/sign-in?next=/console/%0d%0ax").status_code == 200
    signed = client.post("/console/sign-in", data={"token": ADMIN_TOKEN, "next": "/console/\r\nSet-Cookie: x=1"})
    assert signed.status_code == 302 and signed.location == "/console/"


def test_grpc_bytes_that_are_no_message_are_invalid_argument_without_a_traceback(
    memory: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.cloudtasks.grpc_server import GrpcFront

    server = GrpcFront(create_app(Settings(), backend=memory).extensions["cloudtasks"], "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = channel.unary_unary("/google.cloud.tasks.v2beta2.CloudTasks/GetQueue")
            with caplog.at_level(logging.DEBUG), pytest.raises(grpc.RpcError) as caught:
                call(b"\xff\xff\xff\xff", timeout=10)
        assert caught.value.code() == Code.INVALID_ARGUMENT, caught.value
        assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    finally:
        server.stop()


# -- 5. the console's session --------------------------------------------------------

ADMIN_TOKEN = "admin-token-0123456789abcdef"


def _secured(memory: MemoryBackend, tmp_path: Path, **settings: Any) -> Any:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(ADMIN_TOKEN)} ops@example.com\n")
    settings = {"auth": "token", "tokens_file": tokens, "admins": ("ops@example.com",), **settings}
    return create_app(Settings(**settings), backend=memory)


def _session(client: Any) -> str:
    signed = client.post("/console/sign-in", data={"token": ADMIN_TOKEN, "next": "/console/"})
    assert signed.status_code == 302
    cookie = signed.headers["Set-Cookie"]
    return str(cookie.split(";", 1)[0].split("=", 1)[1])


def test_the_console_cookie_is_a_signed_expiring_session_not_the_token(memory: MemoryBackend, tmp_path: Path) -> None:
    app = _secured(memory, tmp_path)
    client = app.test_client()
    value = _session(client)
    assert ADMIN_TOKEN not in value and ADMIN_TOKEN not in base64.urlsafe_b64decode(value.split(".")[0] + "==").decode()
    assert client.get("/console/").status_code == 200
    # Another worker of the same server (an app built in the same process tree) takes it.
    other = _secured(memory, tmp_path).test_client()
    other.set_cookie("bridge_console", value, path="/console")
    assert other.get("/console/").status_code == 200
    # A forged or altered session is no session.
    body, signature = value.split(".")
    forged = base64.urlsafe_b64encode(f"{int(time.time()) + 999}\nops@example.com".encode()).decode().rstrip("=")
    for bad in (ADMIN_TOKEN, f"{forged}.{signature}", f"{body}.{signature[:-2]}xx"):
        other.set_cookie("bridge_console", bad, path="/console")
        assert other.get("/console/").status_code == 302
        assert other.get("/console/api/queues").status_code == 401


def test_a_session_expires_and_is_refused_once_its_identity_is_no_admin(
    memory: MemoryBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _secured(memory, tmp_path)
    client = app.test_client()
    _session(client)
    later = time.time() + 9 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/console/").status_code == 302
    monkeypatch.undo()
    value = _session(client)
    demoted = create_app(
        Settings(auth="token", tokens_file=tmp_path / "tokens.txt", admins=("else@example.com",)), backend=memory
    ).test_client()
    demoted.set_cookie("bridge_console", value, path="/console")
    assert demoted.get("/console/api/queues").status_code == 403


def test_the_session_cookie_is_secure_when_the_public_url_is_https(memory: MemoryBackend, tmp_path: Path) -> None:
    plain = _secured(memory, tmp_path).test_client()
    signed = plain.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    assert "Secure" not in signed.headers["Set-Cookie"]
    behind = _secured(memory, tmp_path, public_url="https://tasks.example.com").test_client()
    signed = behind.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    assert "Secure" in signed.headers["Set-Cookie"] and "HttpOnly" in signed.headers["Set-Cookie"]


# -- 6. gRPC: deadlines, request ids, logs and counts ---------------------------------


def test_a_grpc_call_whose_deadline_has_passed_reaches_no_backend(memory: MemoryBackend) -> None:
    from bridge.access.acl import Policy
    from bridge.access.auth import Authenticator
    from bridge.access.queues import QueueRegistry
    from bridge.cloudtasks.grpc_server import GrpcFront
    from bridge.cloudtasks.methods import Front
    from bridge.gate.backend import observed
    from bridge.ops.metrics import BackendMeter

    class Slow(Authenticator):
        """Credentials checked slowly: the caller gives up meanwhile."""

        def identify(self, authorization: str | None) -> str | None:
            time.sleep(1.0)
            return None

    queue = Queue("app", "q")
    memory.insert(queue, NewTask("waiting", b"x"))
    front = Front(observed(memory, BackendMeter()), QueueRegistry(), Slow(), Policy())
    server = GrpcFront(front, "127.0.0.1:0")
    try:
        from tests.support.v2beta2 import grpc_client

        client = grpc_client(f"127.0.0.1:{server.port}")
        request = ct.LeaseTasksRequest(
            parent=f"{LOCATION}/queues/q", max_tasks=10, lease_duration=duration_pb2.Duration(seconds=600)
        )
        with pytest.raises(Exception) as caught:
            client.lease_tasks(request=request, timeout=0.3, retry=None)
        assert "Deadline" in type(caught.value).__name__ or "DEADLINE" in str(caught.value)
        time.sleep(1.5)  # the handler ends its call
        [task] = memory.list_tasks(queue)
        assert task.retry_count == 0, "leased for a caller who had gone"
        client.transport.close()
    finally:
        server.stop()


def test_grpc_calls_echo_the_request_id_and_are_logged_and_counted_as_http_requests_are(
    memory: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.cloudtasks.grpc_server import GrpcFront

    server = GrpcFront(create_app(Settings(), backend=memory).extensions["cloudtasks"], "127.0.0.1:0")
    method = "google.cloud.tasks.v2beta2.CloudTasks/GetQueue"

    def count(status: str) -> float:
        return REGISTRY.get_sample_value("bridge_http_requests_total", {"method": method, "status": status}) or 0.0

    before = count("NOT_FOUND")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            get = channel.unary_unary(
                f"/{method}",
                request_serializer=ct.GetQueueRequest.serialize,
                response_deserializer=ct.Queue.deserialize,
            )
            with caplog.at_level(logging.INFO, logger="bridge.request"), pytest.raises(grpc.RpcError) as caught:
                get(ct.GetQueueRequest(name=f"{LOCATION}/queues/nowhere"), metadata=[("x-request-id", "grpc-42")])
        assert caught.value.code() == Code.NOT_FOUND
        assert ("x-request-id", "grpc-42") in caught.value.trailing_metadata()
    finally:
        server.stop()
    (line,) = [r.__dict__["fields"] for r in caplog.records if r.name == "bridge.request"]
    assert (line["request_id"], line["method"], line["status"], line["transport"]) == (
        "grpc-42",
        method,
        "NOT_FOUND",
        "grpc",
    )
    assert line["reason"] == "notFound"
    assert count("NOT_FOUND") == before + 1


# -- 3. cross-site: curl and the clients keep working -----------------------------------


def _curl(*arguments: str) -> tuple[int, str]:
    """Run the real curl; its status code and body."""
    curl = shutil.which("curl")
    if curl is None:
        unavailable("curl is not on PATH")
    assert curl is not None
    done = subprocess.run(
        [curl, "-s", "-w", "\n%{http_code}", *arguments], capture_output=True, text=True, timeout=60, check=True
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_curl_with_json_works_and_a_form_body_is_refused_with_a_message(memory: MemoryBackend) -> None:
    server = BridgeServer(create_app(Settings(), backend=memory))
    try:
        tasks = f"{server.url}{V1}/q/tasks"
        json_body = json.dumps({"id": "by-curl", "payloadBase64": b64(b"x")})
        status, _ = _curl("-H", "Content-Type: application/json", "-d", json_body, tasks)
        assert status == 200
        # curl -d without -H sends a form's content type: refused, saying what to send.
        status, body = _curl("-d", '{"id": "form"}', tasks)
        assert status == 403 and "application/json" in json.loads(body)["error"]["message"]
        # A lease needs no body: curl -X POST, and curl -d '' (an empty form), are served.
        assert _curl("-X", "POST", f"{tasks}/lease?numTasks=1&leaseSecs=1")[0] == 200
        assert _curl("-d", "", f"{tasks}/lease?numTasks=1&leaseSecs=1")[0] == 200
        assert _curl(f"{tasks}/by-curl")[0] == 200
    finally:
        server.close()

