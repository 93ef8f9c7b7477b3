"""The gate's HTTP pipeline answers the API's methods past Flask's per-request machinery
(bridge.taskqueue.fastpath) exactly as Flask's own dispatch of the same views does, and
steps aside when the app has per-request work it does not do itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bridge import create_app
from bridge.access.auth import hash_token
from bridge.gate.http import HttpGate
from bridge.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

BASE = "/taskqueue/v1beta2/projects/s~app/taskqueues/q"
#: Requests in order: successes, each kind of error, and paths the short way leaves to Flask.
REQUESTS: list[tuple[str, str, dict[str, object] | None]] = [
    ("POST", f"{BASE}/tasks", {"id": "t1", "payloadBase64": "aGk", "tag": "x"}),
    ("POST", f"{BASE}/tasks", {"id": "t1"}),
    ("POST", f"{BASE}/tasks", {"id": "bad id"}),
    ("GET", f"{BASE}/tasks/t1?fields=id,tag&prettyPrint=false", None),
    ("POST", f"{BASE}/tasks/lease?numTasks=5&leaseSecs=60", None),
    ("POST", f"{BASE}/tasks/lease?numTasks=0&leaseSecs=60", None),
    ("POST", f"{BASE}/tasks/lease?leaseSecs=60", None),
    ("GET", f"{BASE}/tasks", None),
    ("GET", f"{BASE}?getStats=true", None),
    ("DELETE", f"{BASE}/tasks/t1", None),
    ("DELETE", f"{BASE}/tasks/t1", None),
    ("PUT", f"{BASE}/tasks/t1", None),
    ("GET", f"{BASE}/tasks/", None),
    ("GET", f"{BASE}//tasks", None),
    ("HEAD", f"{BASE}/tasks", None),
]


def _front(app: Flask) -> HttpGate:
    layer = app.wsgi_app
    assert isinstance(layer, HttpGate)
    return layer


def _short(app: Flask) -> bool:
    """Whether the gate answers the API's methods past Flask."""
    fast = _front(app).fast
    return fast is not None and fast.enabled()


def _answers(client: FlaskClient) -> list[tuple[int, dict[str, str], object]]:
    answers = []
    for method, path, body in REQUESTS:
        reply: TestResponse = client.open(path, method=method, json=body)
        headers = {k: v for k, v in reply.headers.items() if k != "X-Request-Id"}
        assert reply.headers["X-Request-Id"]
        data = reply.get_data()
        content: object = json.loads(data) if data and reply.mimetype == "application/json" else data
        if isinstance(content, dict):
            for item in content.get("items", [content]):
                # Times come from the clock; everything else must be equal.
                item.pop("enqueueTimestamp", None)
                item.pop("leaseTimestamp", None)
                item.get("stats", {}).pop("oldestTask", None)
        answers.append((reply.status_code, headers, content))
    return answers


def test_the_short_way_answers_as_flask_does(caplog: pytest.LogCaptureFixture) -> None:
    short = create_app(Settings())
    flask_only = create_app(Settings())

    @flask_only.before_request
    def other_work() -> None:
        """Per-request work the short way does not know of: it must step aside."""

    with caplog.at_level(logging.INFO, logger="bridge.request"):
        taken = _answers(short.test_client())
        lines_short = [dict(r.__dict__["fields"]) for r in caplog.records if r.name == "bridge.request"]
        caplog.clear()
        left = _answers(flask_only.test_client())
        lines_flask = [dict(r.__dict__["fields"]) for r in caplog.records if r.name == "bridge.request"]
    assert _short(short) and not _short(flask_only)
    assert taken == left
    assert [status for status, _, _ in taken][:3] == [200, 409, 400]

    def comparable(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in line.items() if k not in ("request_id", "duration_ms")} for line in lines]

    assert comparable(lines_short) == comparable(lines_flask)
    assert len(lines_short) == len(REQUESTS)


def test_the_caller_request_id_comes_back_on_the_short_way() -> None:
    client = create_app(Settings()).test_client()
    reply = client.post(f"{BASE}/tasks", json={}, headers={"X-Request-Id": "abc-123"})
    assert reply.status_code == 200 and reply.headers["X-Request-Id"] == "abc-123"
    reply = client.post(f"{BASE}/tasks", data=b"{", headers={"X-Request-Id": "abc-124"})
    assert reply.status_code == 400 and reply.headers["X-Request-Id"] == "abc-124"


def test_the_short_way_steps_aside_for_a_trusted_hosts_setting() -> None:
    app = create_app(Settings())
    app.config["TRUSTED_HOSTS"] = ["bridge.example"]
    assert not _short(app)
    assert app.test_client().get(f"{BASE}/tasks").status_code == 400


QUEUE_YAML = """\
queue:
- name: q
  mode: pull
  acl:
  - user_email: worker@example.com
  - writer_email: worker@example.com
  retry_parameters:
    task_retry_limit: 3
"""
TOKEN = "token-of-worker-0123456789abcdef"


class _Counted:
    """Counts the requests that reach Flask's own dispatch."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.paths: list[str] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.paths.append(environ["PATH_INFO"])
        return self.app(environ, start_response)


def test_the_short_way_takes_the_api_in_the_fully_configured_app(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Console, v2beta2 front, batch, Host check, tokens, queue file, project allow-list
    and strict leases all on: none of them may switch the short way off."""
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(TOKEN)}  worker@example.com\n")
    settings = Settings(
        queues=queues,
        auth="token",
        tokens_file=tokens,
        projects=("app",),
        strict_leases=True,
        admins=("worker@example.com",),
        metrics_auth=True,
    )
    app = create_app(settings)
    front = _front(app)
    flask = front.flask = _Counted(front.flask)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with caplog.at_level(logging.INFO, logger="bridge.request"):
        assert client.post(f"{BASE}/tasks", json={"id": "t1"}, headers=auth).status_code == 200
        lease = client.post(f"{BASE}/tasks/lease?numTasks=5&leaseSecs=60", headers=auth)
        assert lease.status_code == 200 and [t["id"] for t in lease.json["items"]] == ["t1"]  # type: ignore[index]
        assert client.post(f"{BASE}/tasks", json={"id": "t2"}).status_code == 401
        other = "/taskqueue/v1beta2/projects/other-app/taskqueues/q/tasks"
        assert client.post(other, json={"id": "t3"}, headers=auth).status_code == 404
        assert client.get(f"{BASE}/tasks", headers={**auth, "Host": "bad host"}).status_code == 400
    assert _short(app) and flask.paths == []
    lines = [r.__dict__["fields"] for r in caplog.records if r.name == "bridge.request"]
    assert [(line["status"], line.get("tasks"), line.get("reason")) for line in lines] == [
        (200, None, None),
        (200, 1, None),
        (401, None, "required"),
        (404, None, "notFound"),
        (400, None, "invalid"),
    ]
    # Everything else is Flask's: the console, the v2beta2 routes, batches.
    client.get("/console/")
    client.get("/v2beta2/projects/app/locations/l/queues/q/tasks", headers=auth)
    client.post("/batch", data=b"", content_type="multipart/mixed; boundary=x", headers=auth)
    assert flask.paths == [
        "/console/",
        "/v2beta2/projects/app/locations/l/queues/q/tasks",
        "/batch",
    ]


def test_a_batch_part_taken_by_the_short_way_logs_its_reason_on_its_own_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A part runs inside the batch's Flask request: its error reason belongs to its own
    log line, not to the batch's, as when Flask dispatches the part."""
    body = (
        f"--b0\r\nContent-Type: application/http\r\n\r\nGET {BASE}/tasks/missing HTTP/1.1\r\n\r\n\r\n--b0--\r\n"
    ).encode()
    lines = {}
    for name, app in (("short", create_app(Settings())), ("flask", create_app(Settings()))):
        if name == "flask":
            app.before_request(lambda: None)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bridge.request"):
            reply = app.test_client().post("/batch", data=body, content_type="multipart/mixed; boundary=b0")
        assert reply.status_code == 200 and b"404" in reply.get_data()
        assert _short(app) == (name == "short")
        lines[name] = [
            {k: v for k, v in r.__dict__["fields"].items() if k not in ("request_id", "duration_ms")}
            for r in caplog.records
            if r.name == "bridge.request"
        ]
    assert lines["short"] == lines["flask"]
    assert [(line["method"], line.get("reason")) for line in lines["short"]] == [
        ("taskqueue.tasks.get", "notFound"),
        ("batch", None),
    ]
