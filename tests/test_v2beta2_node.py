"""The Node.js Cloud Tasks client (@google-cloud/tasks, v2beta2) on the bridge's front, over
gRPC and over its REST fallback, as a Node.js worker runs it, sharing queues with v1 workers.

The client runs in `tests/node/cloud_tasks_driver.js`, installed by ``npm ci --prefix
tests/node`` (CI does it); without node or those modules the tests skip on a laptop and
fail in CI. Each test drives one client process, call by call, so that a step can use
what an earlier one answered (a lease's schedule_time) as a worker does.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from bridge.cloudtasks.convert import HTTP_STATUS
from bridge.cloudtasks.grpc_server import GrpcFront
from tests.conftest import unavailable
from tests.support.api import b64, insert, lease, listed
from tests.support.http import BridgeServer

pytestmark = pytest.mark.memory

NODE = Path(__file__).resolve().parent / "node"
DRIVER = NODE / "cloud_tasks_driver.js"
LOCATION = "projects/demo-app/locations/europe-west1"
#: How long one call may take on a loaded machine (the first one loads the client).
CALL_SECONDS = 120
Code = grpc.StatusCode


class NodeError(Exception):
    """A call the client reported as failed, with the canonical code it stands for."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class NodeClient:
    """One CloudTasksClient in a Node.js process, called over a pipe."""

    def __init__(self, node: str, transport: str, port: int) -> None:
        self.transport = transport
        self.process = subprocess.Popen(
            [node, str(DRIVER), transport, "127.0.0.1", str(port)],
            cwd=NODE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "METADATA_SERVER_DETECTION": "none"},
        )

    def call(self, method: str, **request: Any) -> Any:
        """The client's answer to ``client.<method>(request)``; NodeError when it fails."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"method": method, "request": request}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], CALL_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.close()
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"the Node.js client gave no answer to {method}: {stderr}")
        answer = json.loads(line)
        if "error" in answer:
            raise NodeError(self._code(answer["error"]), answer["error"]["message"])
        return answer["response"]

    def _code(self, error: dict[str, Any]) -> grpc.StatusCode:
        if self.transport == "grpc":
            return next(code for code in Code if code.value[0] == error["code"])
        # The REST fallback reports the HTTP status and the body of Google's JSON error.
        body = json.loads(error["message"])["error"]
        code = Code[body["status"]]
        assert error["code"] == body["code"] == HTTP_STATUS[code], error
        return code

    def refused(self, code: grpc.StatusCode, method: str, **request: Any) -> str:
        """Make a call that must fail with ``code``; its message."""
        with pytest.raises(NodeError) as caught:
            self.call(method, **request)
        assert caught.value.code == code, caught.value
        return caught.value.message

    def close(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=CALL_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


@dataclass
class Served:
    """One bridge: v1 and the v2beta2 front over HTTP, and its gRPC front."""

    http: BridgeServer
    grpc_port: int


@pytest.fixture(scope="module")
def node() -> str:
    binary = shutil.which("node")
    if binary is None:
        unavailable("node is not on PATH (the Node.js Cloud Tasks client's tests)")
    if not (NODE / "node_modules" / "@google-cloud" / "tasks").is_dir():
        unavailable("the Node.js Cloud Tasks client is not installed: npm ci --prefix tests/node")
    assert binary is not None
    return binary


@pytest.fixture
def served(memory_server: BridgeServer) -> Iterator[Served]:
    front = GrpcFront(memory_server.app.extensions["cloudtasks"], "127.0.0.1:0")
    yield Served(memory_server, front.port)
    front.stop()


@pytest.fixture(params=["grpc", "rest"])
def client(node: str, served: Served, request: pytest.FixtureRequest) -> Iterator[NodeClient]:
    port = served.grpc_port if request.param == "grpc" else served.http.port
    client = NodeClient(node, request.param, port)
    yield client
    client.close()


def _seconds(stamp: dict[str, Any]) -> float:
    return int(stamp["seconds"]) + float(stamp.get("nanos", 0)) / 1e9


def _id(task: dict[str, Any]) -> str:
    return str(task["name"].rsplit("/", 1)[1])


def test_the_node_client_administers_a_pull_queue(client: NodeClient, served: Served) -> None:
    queue_id = f"node-{client.transport}-{uuid.uuid4().hex[:8]}"
    name = f"{LOCATION}/queues/{queue_id}"
    created = client.call(
        "createQueue", parent=LOCATION, queue={"name": name, "pullTarget": {}, "retryConfig": {"maxAttempts": 4}}
    )
    assert created["state"] == "RUNNING" and created["retryConfig"]["maxAttempts"] == 4, created
    # The mask names pull_target only: the attempts stay as they are (the protos' spelling).
    kept = client.call("updateQueue", queue={"name": name, "pullTarget": {}}, updateMask={"paths": ["pull_target"]})
    assert kept["retryConfig"]["maxAttempts"] == 4, kept
    for path, attempts in (("retry_config.max_attempts", 6), ("retryConfig.maxAttempts", 7)):
        queue = {"name": name, "retryConfig": {"maxAttempts": attempts}}
        updated = client.call("updateQueue", queue=queue, updateMask={"paths": [path]})
        assert updated["retryConfig"]["maxAttempts"] == attempts, (path, updated)
    masked = client.call("getQueue", name=name, readMask={"paths": ["retry_config"]})
    assert masked["retryConfig"]["maxAttempts"] == 7 and masked["name"] == "", masked
    v1 = served.http.api().taskqueues().get(project="demo-app", taskqueue=queue_id).execute()
    assert v1["maxLeases"] == 7
    # A setting the bridge cannot keep is refused, and nothing is created.
    other = {"name": f"{name}-x", "pullTarget": {}, "retryConfig": {"maxRetryDuration": {"seconds": 300}}}
    said = client.refused(Code.INVALID_ARGUMENT, "createQueue", parent=LOCATION, queue=other)
    assert "retry_config.max_retry_duration" in said, said
    client.refused(Code.NOT_FOUND, "getQueue", name=f"{name}-x")

    assert client.call("pauseQueue", name=name)["state"] == "PAUSED"
    client.call("createTask", parent=name, task={"pullMessage": {"payload": b64(b"a")}})
    lease_request = {"parent": name, "maxTasks": 10, "leaseDuration": {"seconds": 60}}
    client.refused(Code.FAILED_PRECONDITION, "leaseTasks", **lease_request)
    assert client.call("resumeQueue", name=name)["state"] == "RUNNING"
    client.call("createTask", parent=name, task={"pullMessage": {"payload": b64(b"b")}})
    assert client.call("purgeQueue", name=name)["name"] == name
    # The list methods page through every page and resolve with the whole list.
    assert client.call("listTasks", parent=name) == []
    assert name in [queue["name"] for queue in client.call("listQueues", parent=LOCATION)]
    client.call("deleteQueue", name=name)
    client.refused(Code.NOT_FOUND, "getQueue", name=name)


def test_the_node_client_leases_tasks_shared_with_v1_workers(client: NodeClient, served: Served) -> None:
    queue_id = f"shared-{client.transport}-{uuid.uuid4().hex[:8]}"
    name = f"{LOCATION}/queues/{queue_id}"
    v1 = served.http.api()
    insert(v1, queue_id, project="demo-app", id="fromv1", tag="blue", payloadBase64=b64(b"v1 work"))
    task = {"name": f"{name}/tasks/fromnode", "pullMessage": {"payload": b64(b"node work"), "tag": "red"}}
    created = client.call("createTask", parent=name, task=task, responseView="FULL")
    assert created["view"] == "FULL" and base64.b64decode(created["pullMessage"]["payload"]) == b"node work"
    basic = client.call("listTasks", parent=name)
    assert sorted(map(_id, basic)) == ["fromnode", "fromv1"] and {t["view"] for t in basic} == {"BASIC"}
    assert all(not t["pullMessage"]["payload"] for t in basic), basic

    # Created through v1, leased, renewed and cancelled through Node.js.
    lease_request = {"parent": name, "maxTasks": 10, "leaseDuration": {"seconds": 60}, "responseView": "FULL"}
    [leased] = client.call("leaseTasks", filter='tag="blue"', **lease_request)["tasks"]
    assert _id(leased) == "fromv1" and leased["status"]["attemptDispatchCount"] == 1
    assert base64.b64decode(leased["pullMessage"]["payload"]) == b"v1 work"
    renewed = client.call(
        "renewLease", name=leased["name"], scheduleTime=leased["scheduleTime"], leaseDuration={"seconds": 120}
    )
    assert _seconds(renewed["scheduleTime"]) > _seconds(leased["scheduleTime"]), renewed
    cancelled = client.call("cancelLease", name=leased["name"], scheduleTime=renewed["scheduleTime"])
    assert _seconds(cancelled["scheduleTime"]) <= time.time() + 1, cancelled

    # Created through Node.js, leased and deleted through v1.
    [from_node] = lease(v1, queue=queue_id, project="demo-app", groupByTag=True, tag="red")
    assert from_node["id"] == "fromnode" and base64.urlsafe_b64decode(from_node["payloadBase64"]) == b"node work"
    v1.tasks().delete(project="demo-app", taskqueue=queue_id, task="fromnode").execute()

    [again] = client.call("leaseTasks", filter="tag_function=oldest_tag()", **lease_request)["tasks"]
    assert _id(again) == "fromv1" and again["status"]["attemptDispatchCount"] == 2
    stale = {"name": again["name"], "scheduleTime": leased["scheduleTime"]}
    client.refused(Code.FAILED_PRECONDITION, "acknowledgeTask", **stale)
    client.call("acknowledgeTask", name=again["name"], scheduleTime=again["scheduleTime"])
    client.refused(Code.NOT_FOUND, "getTask", name=again["name"])
    assert listed(v1, queue_id, project="demo-app") == []

    gone = {"name": f"{name}/tasks/gone", "pullMessage": {"payload": b64(b"x")}}
    client.call("createTask", parent=name, task=gone)
    assert _id(client.call("getTask", name=gone["name"], responseView="BASIC")) == "gone"
    client.call("deleteTask", name=gone["name"])
    client.refused(Code.ALREADY_EXISTS, "createTask", parent=name, task=gone)
    far = {"pullMessage": {"payload": b64(b"x")}, "scheduleTime": {"seconds": int(time.time()) + 31 * 24 * 3600}}
    said = client.refused(Code.INVALID_ARGUMENT, "createTask", parent=name, task=far)
    assert "schedule_time" in said and "leaseTimestamp" not in said, said
