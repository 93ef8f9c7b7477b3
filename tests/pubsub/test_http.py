"""The v1 API on a Pub/Sub bridge: the README's worker unchanged through two gunicorn
workers, leases handed between bridge processes, and every refusal a clear 400."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from backends.pubsub.backend import PubSubBackend
from bridge import create_app
from bridge.client import connect
from bridge.settings import Settings
from tests.support.api import b64, now_us
from tests.support.http import error_of, serving
from tests.support.process import serving_process
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.pubsub, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8080"
PROJECT = "s~my-app"


def readme_worker() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## A worker, unchanged") :]
    code: str = re.findall(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)[0]
    return code


@pytest.fixture
def gunicorn(url: str, tmp_path: Path) -> Iterator[Any]:
    """Starts bridges on the test's Pub/Sub prefix, each two gunicorn workers sharing
    nothing but the service; yields a function that returns a new one's URL."""
    with ExitStack() as stack:

        def start() -> str:
            port = free_port()
            command = [sys.executable, "-m", "bridge", "serve", "--port", str(port), "--workers", "2"]
            env = {**os.environ, "BRIDGE_BACKEND": url.replace("projects/demo-app", "projects/my-app")}
            log = tmp_path / f"gunicorn-{port}.log"
            stack.enter_context(serving_process(command, cwd=ROOT, env=env, port=port, log=log))
            return f"http://127.0.0.1:{port}"

        yield start


def test_the_readme_worker_runs_unchanged_through_two_gunicorn_workers(gunicorn: Any, url: str) -> None:
    bridge = gunicorn()
    worker = readme_worker()
    assert README_URL in worker and 'tasks.delete(project="s~my-app"' in worker
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(worker.replace(README_URL, bridge), "README.md (A worker, unchanged)", "exec"), namespace)
    namespace["api"]._http.close()
    # Deleted: nothing is left to lease, whichever worker answers.
    api = connect(bridge)
    for _ in range(4):
        leased = api.tasks().lease(project=PROJECT, taskqueue="render", numTasks=10, leaseSecs=0).execute()
        assert "items" not in leased
    api._http.close()


def test_a_lease_taken_on_one_bridge_is_renewed_and_deleted_on_another(gunicorn: Any) -> None:
    apis = [connect(gunicorn()), connect(gunicorn())]
    first, second = (api.tasks() for api in apis)
    first.insert(
        project=PROJECT, taskqueue="render", body={"payloadBase64": b64(b"frame 1"), "tag": "movie-7"}
    ).execute()
    [task] = first.lease(project=PROJECT, taskqueue="render", numTasks=10, leaseSecs=60).execute()["items"]
    assert (task["tag"], task["retry_count"], task["queueName"]) == (
        "movie-7",
        1,
        "projects/s~my-app/taskqueues/render",
    )
    body = {"leaseTimestamp": task["leaseTimestamp"]}
    renewed = second.update(
        project=PROJECT, taskqueue="render", task=task["id"], newLeaseSeconds=120, body=body
    ).execute()
    assert renewed["id"] == task["id"] and int(renewed["leaseTimestamp"]) > int(task["leaseTimestamp"])
    # Released on the second bridge, leased again on the first: the old id is fenced off.
    second.patch(project=PROJECT, taskqueue="render", task=task["id"], newLeaseSeconds=0, body={}).execute()
    [again] = first.lease(project=PROJECT, taskqueue="render", numTasks=10, leaseSecs=60).execute()["items"]
    assert again["retry_count"] == 2 and again["id"] != task["id"]
    error_of(second.delete(project=PROJECT, taskqueue="render", task=task["id"]), 409, "conflict")
    second.delete(project=PROJECT, taskqueue="render", task=again["id"]).execute()
    for api in apis:
        api._http.close()


@pytest.fixture
def api(url: str, prefix: str) -> Iterator[Any]:
    backend_url = url.replace("projects/demo-app", "projects/my-app")
    app = create_app(Settings(backend=backend_url))
    with serving(app) as server:
        yield server.api()
    app.extensions["bridge"].backend.close()


def _pubsub_400(request: Any, location: str | None = None) -> None:
    envelope = error_of(request, 400, "invalid")
    assert envelope["error"]["message"].startswith("Pub/Sub"), envelope
    if location is not None:
        assert envelope["error"]["errors"][0]["location"] == location, envelope


def test_each_refusal_is_a_400_that_says_why_and_changes_nothing(api: Any) -> None:
    tasks, queues = api.tasks(), api.taskqueues()
    where = {"project": PROJECT, "taskqueue": "render"}
    inserted = tasks.insert(**where, body={"payloadBase64": b64(b"kept")}).execute()
    assert inserted["id"].isdigit()
    _pubsub_400(tasks.insert(**where, body={"id": "frame-1", "payloadBase64": b64(b"x")}), "id")
    ahead = str(now_us() + 3600 * 1_000_000)
    _pubsub_400(tasks.insert(**where, body={"payloadBase64": b64(b"x"), "leaseTimestamp": ahead}), "leaseTimestamp")
    _pubsub_400(tasks.get(**where, task=inserted["id"]), "task")
    _pubsub_400(tasks.list(**where))
    _pubsub_400(tasks.delete(**where, task=inserted["id"]), "task")
    _pubsub_400(tasks.lease(**where, numTasks=1, leaseSecs=60, groupByTag=True), "groupByTag")
    _pubsub_400(tasks.lease(**where, numTasks=1, leaseSecs=60, groupByTag=True, tag="movie-7"), "groupByTag")
    _pubsub_400(tasks.lease(**where, numTasks=1, leaseSecs=601), "leaseSecs")
    _pubsub_400(queues.get(**where, getStats=True), "getStats")
    [task] = tasks.lease(**where, numTasks=10, leaseSecs=60).execute()["items"]
    assert task["payloadBase64"] == b64(b"kept") and task["retry_count"] == 1
    _pubsub_400(tasks.update(**where, task=task["id"], newLeaseSeconds=601, body={}), "leaseSecs")
    assert queues.get(**where).execute()["maxLeases"] == 100
    tasks.delete(**where, task=task["id"]).execute()
    assert "items" not in tasks.lease(**where, numTasks=10, leaseSecs=0).execute()


def test_a_queue_yaml_retry_limit_pubsub_cannot_keep_is_a_400_on_every_call(url: str, queue_file: Any) -> None:
    path = queue_file("queue:\n- name: render\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 3\n")
    app = create_app(Settings(backend=url.replace("projects/demo-app", "projects/my-app"), queues=path))
    with serving(app) as server:
        tasks = server.api().tasks()
        _pubsub_400(tasks.insert(project=PROJECT, taskqueue="render", body={"payloadBase64": b64(b"x")}), "maxLeases")
        _pubsub_400(tasks.lease(project=PROJECT, taskqueue="render", numTasks=1, leaseSecs=1), "maxLeases")
    backend = app.extensions["bridge"].backend
    assert isinstance(backend.inner, PubSubBackend) and backend.list_queues("my-app") == []
    backend.close()
