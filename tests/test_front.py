"""bridge.front, the API's short way past Flask's per-request machinery, answers exactly
as Flask's own dispatch of the same views does, and steps aside when the app has
per-request work it does not do itself."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bridge import create_app
from bridge.front import ApiFront
from bridge.settings import Settings

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


def _front(app: Flask) -> ApiFront:
    layer = app.wsgi_app
    while not isinstance(layer, ApiFront):
        layer = layer.app  # type: ignore[attr-defined]
    return layer


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
    assert _front(short).enabled() and not _front(flask_only).enabled()
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
    assert not _front(app).enabled()
    assert app.test_client().get(f"{BASE}/tasks").status_code == 400


def test_a_blueprints_own_hooks_leave_the_short_way_on() -> None:
    app = create_app(Settings())
    console = Blueprint("console", __name__)

    @console.before_request
    def console_only() -> None:
        """Runs for the blueprint's routes only, never for the API's."""

    app.register_blueprint(console, url_prefix="/console")
    assert _front(app).enabled()
