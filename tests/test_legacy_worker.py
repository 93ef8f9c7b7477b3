"""A worker written as the workers of the 2017 local Queue Service were, against
``--dialect legacy-local``: its whole cycle runs without an error.

The worker below is written for this test, in the manner of CS Unplugged's render
daemon of that year: Google's API client built from the stand-in's Discovery URL
(``/api/{api}/{apiVersion}``), imported by its old name ``apiclient``; JSON payloads in
standard base64; ``result["items"]`` read without a default; only the kind
``taskqueue#tasks`` accepted; timestamps used as numbers; project ``test_project``
(written as ``b~test_project``, read without the prefix) and queue ``test_queue``.

The originals ran googleapiclient 1.6.2 on Python 3.6 with httplib2shim; this one runs
the project's googleapiclient 2.x with plain httplib2. For this cycle the two send the
same requests: ``apiclient`` is still the same package, ``build`` with a
``discoveryServiceUrl`` still fetches that document, and query and path parameters are
written alike.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from apiclient.discovery import HttpError, build

from bridge.client import authorized_http
from tests.support.harness import Harness, Variant
from tests.support.http import Clients

US = 10**6


class LegacyWorker:
    """Talks to a task queue the way the 2017 workers did; lets every HttpError through,
    so that the test sees any (the originals logged them and carried on)."""

    def __init__(self, server: Clients, project: str, queue: str) -> None:
        self.project = project
        self.queue = queue
        self.http = authorized_http(server.token)
        self.api = build(
            "taskqueue",
            "v1beta2",
            http=self.http,
            discoveryServiceUrl=server.url + "/api/{api}/{apiVersion}",
        )

    def _project(self, writing: bool) -> str:
        # The 2017 workers wrote with the b~ partition and read without it.
        return "b~" + self.project if writing else self.project

    @staticmethod
    def _tasks(result: dict[str, Any]) -> list[dict[str, Any]]:
        if result["kind"] != "taskqueue#tasks":
            return []
        tasks: list[dict[str, Any]] = result["items"]
        for task in tasks:
            task["payload"] = json.loads(base64.b64decode(task["payloadBase64"]).decode())
        return tasks

    def size(self) -> int:
        get = self.api.taskqueues().get(project=self._project(False), taskqueue=self.queue, getStats=True)
        total: int = get.execute()["stats"]["totalTasks"]
        return total

    def create(self, payload: dict[str, Any], tag: str | None = None) -> str:
        body = {
            "kind": "taskqueues#task",
            "queueName": self.queue,
            "payloadBase64": base64.b64encode(json.dumps(payload).encode()).decode(),
        }
        if tag is not None:
            body["tag"] = tag
        insert = self.api.tasks().insert(project=self._project(True), taskqueue=self.queue, body=body)
        task_id: str = insert.execute()["id"]
        return task_id

    def list_tasks(self) -> list[dict[str, Any]]:
        return self._tasks(self.api.tasks().list(project=self._project(False), taskqueue=self.queue).execute())

    def lease(self, count: int, seconds: float, tag: str | None = None) -> list[dict[str, Any]]:
        lease = self.api.tasks().lease(
            project=self._project(True),
            taskqueue=self.queue,
            numTasks=count,
            leaseSecs=seconds,  # a float, as the daemon computed it: the client writes it as an integer
            groupByTag=tag is not None,
            tag=tag,
        )
        return self._tasks(lease.execute())

    def extend(self, task_id: str, seconds: int) -> dict[str, Any]:
        patch = self.api.tasks().patch(
            project=self._project(True),
            taskqueue=self.queue,
            task=task_id,
            newLeaseSeconds=seconds,
            body={"queueName": self.queue},
        )
        result: dict[str, Any] = patch.execute()
        return result

    def delete(self, task_id: str) -> None:
        self.api.tasks().delete(project=self._project(True), taskqueue=self.queue, task=task_id).execute()

    def clear(self) -> None:
        while self.size() > 0:
            for task in self.list_tasks():
                self.delete(task["id"])


@pytest.fixture
def worker(make_bridge: Callable[..., Clients], variant: Variant) -> Iterator[LegacyWorker]:
    server = make_bridge(dialect="legacy-local")
    if variant.backend.startswith("cloudtasks"):
        # Cloud Tasks cannot hold '_' (test_dialect.py shows the refusal): the same
        # worker, with the names it can hold.
        worker = LegacyWorker(server, "test-project", "test-queue")
    else:
        worker = LegacyWorker(server, "test_project", "test_queue")
    yield worker
    worker.http.close()


def _expected_lease_end(seconds: float) -> float:
    return (time.time() + seconds) * US


def test_a_worker_written_for_the_2017_stand_in_runs_its_whole_cycle(worker: LegacyWorker, harness: Harness) -> None:
    assert worker.size() == 0
    assert worker.lease(20, 20 * 15.0) == []  # an idle queue: the daemon's loop goes on

    payloads = [{"kind": "task#render", "n": n, "url": f"resources/treasure-hunt.html?copies={n}"} for n in range(10)]
    # The '?' of each URL comes out as a '/' in standard base64, which Google's dialect refuses.
    assert all("/" in base64.b64encode(json.dumps(payload).encode()).decode() for payload in payloads)
    ids = [worker.create(payload) for payload in payloads]
    assert worker.size() == 10
    listed = worker.list_tasks()
    assert [task["payload"] for task in listed] == payloads
    assert all("/" in task["payloadBase64"] for task in listed)

    expected = _expected_lease_end(3600)
    [first] = worker.lease(1, 3600)
    assert first["payload"]["n"] == 0
    assert abs(first["leaseTimestamp"] - expected) < 10 * US
    rest = worker.lease(100, 3600)
    assert sorted(task["payload"]["n"] for task in rest) == list(range(1, 10))
    assert all(abs(task["leaseTimestamp"] - expected) < 10 * US for task in rest)
    assert all(task["enqueueTimestamp"] <= task["leaseTimestamp"] for task in rest)
    assert worker.lease(20, 300.0) == []

    # Extended, then handed back as the daemon hands back a task that failed (1 second).
    expected = _expected_lease_end(7200)
    assert abs(worker.extend(first["id"], 7200)["leaseTimestamp"] - expected) < 10 * US
    back = worker.extend(first["id"], 1)
    assert abs(back["leaseTimestamp"] - _expected_lease_end(1)) < 10 * US
    harness.advance(2)
    [again] = worker.lease(20, 300.0)
    assert again["id"] == first["id"] and again["retry_count"] == 2

    for task_id in ids:
        worker.delete(task_id)
    assert worker.size() == 0
    assert worker.list_tasks() == []


def test_the_worker_leases_by_tag_and_clears_its_queue(worker: LegacyWorker) -> None:
    for n in range(5):
        worker.create({"generic": n})
    for n in range(3):
        worker.create({"tagged": n}, tag="Special")
    assert worker.size() == 8
    tagged = worker.lease(1000, 3600, tag="Special")
    assert sorted(task["payload"]["tagged"] for task in tagged) == [0, 1, 2]
    assert {task["tag"] for task in tagged} == {"Special"}
    # Listed tasks carry payloads and a tag, "" for none, as the stand-in's did.
    assert sorted(task["tag"] for task in worker.list_tasks()) == [""] * 5 + ["Special"] * 3
    worker.clear()
    assert worker.size() == 0


def test_the_worker_sees_refusals_as_http_errors(worker: LegacyWorker) -> None:
    """The 2017 workers caught HttpError and nothing else: the bridge's own refusals
    (here a lease extended that the worker does not hold) reach them as that."""
    task_id = worker.create({"n": 1})
    with pytest.raises(HttpError) as refused:
        worker.extend(task_id, 60)
    assert 400 <= refused.value.resp.status < 500
