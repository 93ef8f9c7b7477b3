"""The console and its JSON admin API: pages on every backend, who may use them, CSRF."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from backends.redis.memory import MemoryBackend
from bridge import create_app
from bridge.access.auth import hash_token
from bridge.console.present import payload_view
from bridge.settings import Settings
from tests.support.harness import Harness
from tests.support.http import BridgeServer

PROJECT = "s~shop"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
WORKER_TOKEN = "worker-token-0123456789abcdef"
QUEUE_PAGE = "/console/projects/shop/queues/render"


def _insert(api: Any, queue: str, task: str, payload: bytes = b"x", **fields: Any) -> None:
    body = {"id": task, "payloadBase64": base64.urlsafe_b64encode(payload).decode(), **fields}
    api.tasks().insert(project=PROJECT, taskqueue=queue, body=body).execute()


def _json(response: TestResponse) -> Any:
    assert response.is_json, response.data
    return response.json


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page carries no CSRF token"
    return found[1]


def test_the_pages_work_on_every_backend_and_say_na_for_what_it_cannot_count(
    make_bridge: Callable[..., BridgeServer], harness: Harness
) -> None:
    server = make_bridge(auth="none")
    api = server.api()
    _insert(api, "render", "one", b'{"a": 1}', tag="t")
    _insert(api, "render", "two")
    api.tasks().lease(project=PROJECT, taskqueue="render", numTasks=1, leaseSecs=60).execute()
    listing = server.request("GET", "/console/")
    assert listing.status == 200 and b"render" in listing.body
    page = server.request("GET", QUEUE_PAGE).body.decode()
    assert 'id="stat-total">2<' in page and ">one<" in page and ">two<" in page
    task = server.request("GET", QUEUE_PAGE + "/tasks/one").body.decode()
    assert "shown as json" in task and "&#34;a&#34;: 1" in task
    backend = harness.backend
    for verb, shown in (("activity", "<svg"), ("dead_letters", 'id="dead-letters"'), ("purge_queue", "action-purge")):
        assert (shown in page) == (verb in backend.supports), verb
    if not {"activity", "dead_letters"} <= backend.supports:
        assert "n/a: this backend" in page


@pytest.fixture
def memory() -> Iterator[MemoryBackend]:
    backend = MemoryBackend.from_url("memory://")
    yield backend
    backend.close()


@pytest.fixture
def secured(memory: MemoryBackend, tmp_path: Path) -> Iterator[BridgeServer]:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(ADMIN_TOKEN)} ops@example.com\n{hash_token(WORKER_TOKEN)} worker@example.com\n")
    settings = Settings(auth="token", tokens_file=tokens, admins=("ops@example.com",))
    server = BridgeServer(create_app(settings, backend=memory))
    yield server
    server.close()


def test_with_auth_on_the_console_asks_for_an_admins_token(secured: BridgeServer) -> None:
    _insert(secured.api(ADMIN_TOKEN), "render", "one")
    client = secured.app.test_client()
    away = client.get("/console/")
    assert away.status_code == 302 and away.location.startswith("/console/sign-in")
    assert client.get("/console/api/queues").status_code == 401
    refused = client.post("/console/sign-in", data={"token": WORKER_TOKEN, "next": "/console/"})
    assert refused.status_code == 403 and b"worker@example.com may not use the console" in refused.data
    assert client.post("/console/sign-in", data={"token": "nonsense-token-1234567"}).status_code == 401
    signed = client.post("/console/sign-in", data={"token": ADMIN_TOKEN, "next": QUEUE_PAGE})
    assert signed.status_code == 302 and signed.location == QUEUE_PAGE
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    page = client.get(QUEUE_PAGE)
    assert page.status_code == 200 and b"ops@example.com" in page.data
    assert _json(client.get("/console/api/queues"))["queues"][0]["name"] == "render"


def test_every_action_needs_the_pages_csrf_token(secured: BridgeServer) -> None:
    _insert(secured.api(ADMIN_TOKEN), "render", "one")
    client = secured.app.test_client()
    client.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    purge = QUEUE_PAGE + "/actions/purge"
    assert client.post(purge).status_code == 403
    assert client.post(purge, data={"csrf": "0" * 40}).status_code == 403
    assert client.post("/console/api/projects/shop/queues/render/actions/purge", json={}).status_code == 403
    assert secured.api(ADMIN_TOKEN).tasks().get(project=PROJECT, taskqueue="render", task="one").execute()
    token = _csrf(client.get(QUEUE_PAGE).data.decode())
    done = client.post(purge, data={"csrf": token})
    assert done.status_code == 302 and "Purged+render" in done.location
    assert "items" not in secured.api(ADMIN_TOKEN).tasks().list(project=PROJECT, taskqueue="render").execute()


def test_the_json_api_takes_an_admins_bearer_token_without_csrf(secured: BridgeServer) -> None:
    _insert(secured.api(ADMIN_TOKEN), "render", "one")
    action = "/console/api/projects/shop/queues/render/actions/pause"
    worker = secured.request("POST", action, {}, headers={"Authorization": f"Bearer {WORKER_TOKEN}"})
    assert worker.status == 403 and worker.json["error"]["errors"][0]["reason"] == "forbidden"
    admin_header = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    admin = secured.request("POST", action, {}, headers=admin_header)
    assert admin.status == 200 and admin.json["message"].startswith("Paused render")
    leased = secured.api(ADMIN_TOKEN).tasks().lease(project=PROJECT, taskqueue="render", numTasks=1, leaseSecs=9)
    assert "items" not in leased.execute()  # paused: leases nothing
    described = secured.request("GET", "/console/api/projects/shop/queues/render", headers=admin_header)
    assert described.json["paused"] is True and described.json["stats"]["totalTasks"] == 1
    minutes = described.json["activity"]
    assert len(minutes) == 60 and sum(minute["inserted"] for minute in minutes) == 1
    assert minutes[-1]["depth"] == 1 and isinstance(minutes[-1]["minuteUs"], str)


def _open_client(memory: MemoryBackend) -> FlaskClient:
    return create_app(Settings(), backend=memory).test_client()


def test_with_auth_off_forms_still_carry_a_token_and_foreign_posts_are_refused(memory: MemoryBackend) -> None:
    client = _open_client(memory)
    client.post("/taskqueue/v1beta2/projects/shop/taskqueues/render/tasks", json={"id": "a", "payloadBase64": "eA"})
    page = client.get(QUEUE_PAGE)
    assert "HttpOnly" in page.headers["Set-Cookie"]
    stranger = create_app(Settings(), backend=memory).test_client()  # no cookie: another site's form
    assert stranger.post(QUEUE_PAGE + "/actions/pause").status_code == 403
    api = "/console/api/projects/shop/queues/render/actions/pause"
    assert stranger.post(api, data={"x": "1"}).status_code == 403  # a form, not JSON
    assert stranger.post(api, json={}).status_code == 200  # a script: JSON needs CORS, which the bridge never allows
    assert client.post(QUEUE_PAGE + "/actions/resume", data={"csrf": _csrf(page.data.decode())}).status_code == 302


def test_task_actions_release_a_lease_and_delete(memory: MemoryBackend) -> None:
    client = _open_client(memory)
    base = "/taskqueue/v1beta2/projects/shop/taskqueues/render/tasks"
    client.post(base, json={"id": "a", "payloadBase64": "eA"})
    client.post(base + "/lease?numTasks=1&leaseSecs=600")
    token = _csrf(client.get(QUEUE_PAGE + "/tasks/a").data.decode())
    released = client.post(QUEUE_PAGE + "/tasks/a/actions/release", data={"csrf": token})
    assert released.status_code == 302
    assert _json(client.post(base + "/lease?numTasks=1&leaseSecs=600"))["items"][0]["id"] == "a"
    deleted = client.post(QUEUE_PAGE + "/tasks/a/actions/delete", data={"csrf": token})
    assert deleted.status_code == 302 and deleted.location.startswith(QUEUE_PAGE + "?notice=Deleted")
    missing = client.get(QUEUE_PAGE + "/tasks/a")
    assert missing.status_code == 404 and b"<h1>404</h1>" in missing.data


def test_a_dropped_task_is_listed_after_max_leases(memory: MemoryBackend, tmp_path: Path) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text("queue:\n- name: render\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 1\n")
    client = create_app(Settings(queues=queues), backend=memory).test_client()
    base = "/taskqueue/v1beta2/projects/shop/taskqueues/render/tasks"
    client.post(base, json={"id": "doomed", "payloadBase64": "eA"})
    client.post(base + "/lease?numTasks=1&leaseSecs=0")
    client.post(base + "/lease?numTasks=1&leaseSecs=0")  # the second lease drops it
    page = client.get(QUEUE_PAGE).data.decode()
    assert 'id="dead-letters"' in page and ">doomed<" in page
    letters = _json(client.get("/console/api/projects/shop/queues/render/dead-letters"))["deadLetters"]
    assert [(d["id"], d["leases"]) for d in letters] == [("doomed", 1)]


def test_bad_filters_and_unknown_queues_are_4xx_pages(memory: MemoryBackend, tmp_path: Path) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text("queue:\n- name: render\n  mode: pull\n")
    client = create_app(Settings(queues=queues), backend=memory).test_client()
    assert client.get(QUEUE_PAGE + "?state=sleeping").status_code == 400
    assert client.get(QUEUE_PAGE + "?page=garbage").status_code == 400
    assert client.get("/console/projects/shop/queues/nowhere").status_code == 404
    assert client.get("/console/api/projects/shop/queues/render/tasks?pageSize=many").status_code == 400
    assert client.post("/console/api/projects/shop/queues/render/actions/explode", json={}).status_code == 400


@pytest.mark.parametrize(
    ("payload", "kind", "start"),
    [
        (b'{"b": [1]}', "json", '{\n  "b": [\n    1'),
        ("déjà vu".encode(), "text", "déjà vu"),
        (b"\x00\x01binary", "binary", "00000000  00 01 62 69"),
        (b"\xff\xfe", "binary", "00000000  ff fe"),
    ],
)
def test_payloads_show_as_json_text_or_hex(payload: bytes, kind: str, start: str) -> None:
    view = payload_view(payload)
    assert (view.kind, view.size, view.cut) == (kind, len(payload), 0)
    assert view.text.startswith(start)


def test_a_large_payload_is_cut_and_says_how_much(memory: MemoryBackend) -> None:
    view = payload_view(b"y" * 100_000)
    assert len(view.text) == 64 * 1024 and view.cut == 100_000 - 64 * 1024
    binary = payload_view(b"\x00" * 10_000)
    assert binary.cut == 10_000 - 4096 and binary.text.count("\n") == 4096 // 16 - 1


DECLARED = "queue:\n- name: render\n  mode: pull\n- name: reports\n  mode: pull\n"


def _declared_app(tmp_path: Path, text: str, **settings: Any) -> Iterator[FlaskClient]:
    path = tmp_path / "queue.yaml"
    path.write_text(text)
    backend = MemoryBackend.from_url("memory://")
    try:
        yield create_app(Settings(queues=path, **settings), backend=backend).test_client()
    finally:
        backend.close()


def test_queues_queue_yaml_declares_are_listed_before_any_call(tmp_path: Path) -> None:
    for client in _declared_app(tmp_path, "application: shop\n" + DECLARED):
        listed = _json(client.get("/console/api/queues"))["queues"]
        assert [(q["project"], q["name"], q["stats"]["totalTasks"]) for q in listed] == [
            ("shop", "render", 0),
            ("shop", "reports", 0),
        ]
        assert 'href="/console/projects/shop/queues/reports"' in client.get("/console/").text
    for client in _declared_app(tmp_path, DECLARED, projects=("s~shop",)):
        assert [q["name"] for q in _json(client.get("/console/api/queues"))["queues"]] == ["render", "reports"]


def test_declared_queues_without_a_project_are_named_and_shown_for_the_project_asked(tmp_path: Path) -> None:
    for client in _declared_app(tmp_path, DECLARED):
        listing = _json(client.get("/console/api/queues"))
        assert listing == {"queues": [], "declared": ["render", "reports"]}
        page = client.get("/console/").text
        assert 'id="declared"' in page and "render, reports" in page
        asked = _json(client.get("/console/api/queues?project=s~shop"))["queues"]
        assert [(q["project"], q["name"]) for q in asked] == [("shop", "render"), ("shop", "reports")]


def test_a_declared_queue_never_used_can_be_purged_and_paused(tmp_path: Path) -> None:
    for client in _declared_app(tmp_path, DECLARED):
        purged = client.post("/console/api/projects/shop/queues/render/actions/purge", json={})
        assert purged.status_code == 200 and _json(purged)["message"] == "Purged render: 0 tasks deleted"
        paused = client.post("/console/api/projects/shop/queues/reports/actions/pause", json={})
        assert paused.status_code == 200
        assert _json(client.get("/console/api/projects/shop/queues/reports"))["paused"] is True
        undeclared = client.post("/console/api/projects/shop/queues/other/actions/purge", json={})
        assert undeclared.status_code == 404
