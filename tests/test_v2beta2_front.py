"""What the bridge's Cloud Tasks front adds to the shared v2beta2 checks: one queue for both
fronts, queue.yaml and its ACLs, credentials over both transports, push features refused,
the HTTP/JSON wire format, and gRPC under several gunicorn workers."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import google.auth.exceptions
import grpc
import pytest
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2

from backends import errors as backend_errors
from backends.base import LeaseRequest, LeaseResult, Queue
from backends.redis.backend import RedisBackend
from backends.redis.memory import MemoryBackend
from bridge import create_app
from bridge.access.auth import hash_token
from bridge.cloudtasks import convert
from bridge.settings import Settings
from tests.support.api import b64, insert, lease
from tests.support.harness import Harness, memory_harness, redis_harness
from tests.support.http import BridgeServer
from tests.support.process import serving_process
from tests.support.redis_server import RedisServer, free_port
from tests.support.v2beta2 import Target, front_target, grpc_client, refused, rest_client

ROOT = Path(__file__).resolve().parent.parent
Code = grpc.StatusCode
FULL = ct.Task.View.FULL
US = 1_000_000
QUEUE = "projects/demo-app/locations/europe-west1/queues/shared"


def _lease(client: ct.CloudTasksClient, queue: str = QUEUE, seconds: int = 60, **fields: Any) -> list[Any]:
    request = ct.LeaseTasksRequest(
        parent=queue, max_tasks=10, lease_duration=duration_pb2.Duration(seconds=seconds), response_view=FULL, **fields
    )
    return list(client.lease_tasks(request=request, retry=None).tasks)


def _us(task: Any) -> int:
    stamp = type(task).pb(task).schedule_time
    return int(stamp.seconds) * US + int(stamp.nanos) // 1000


@pytest.fixture(params=["grpc", "rest"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


BOTH = [
    pytest.param(("memory", "grpc"), marks=pytest.mark.memory, id="grpc-memory"),
    pytest.param(("memory", "rest"), marks=pytest.mark.memory, id="rest-memory"),
    pytest.param(("redis", "rest"), marks=pytest.mark.redis, id="rest-redis"),
    pytest.param(("redis-cluster", "grpc"), marks=pytest.mark.cluster, id="grpc-redis-cluster"),
]


@pytest.fixture(params=BOTH)
def both(request: pytest.FixtureRequest) -> Iterator[tuple[Target, Any, Harness]]:
    """The front over one transport and the v1 API of the same bridge, on one backend."""
    backend, transport = request.param
    if backend == "memory":
        harness = memory_harness()
    else:
        fixture = "redis_server" if backend == "redis" else "redis_cluster"
        harness = redis_harness(request.getfixturevalue(fixture).url)
    app = create_app(Settings(), backend=harness.backend)
    target = front_target(transport, app, transport, harness.advance_us)
    v1 = BridgeServer(app)
    yield target, v1.api(), harness
    v1.close()
    target.close()
    harness.close()


def test_a_task_inserted_through_v1_is_seen_and_leased_through_v2beta2(both: tuple[Target, Any, Harness]) -> None:
    v2, v1, _ = both
    inserted = insert(v1, "shared", project="s~demo-app", id="t1", payloadBase64=b64(b"from v1"), tag="red")
    got = v2.client.get_task(request={"name": f"{QUEUE}/tasks/t1", "response_view": FULL}, retry=None)
    assert (got.pull_message.payload, got.pull_message.tag) == (b"from v1", "red")
    assert _us(got) == int(inserted["leaseTimestamp"])
    [leased] = _lease(v2.client, filter='tag="red"')
    assert leased.status.attempt_dispatch_count == 1
    assert lease(v1, queue="shared", project="demo-app") == []  # the v2beta2 lease holds on v1
    # v1 renews with the lease's ETA, which is the v2beta2 schedule_time to the microsecond.
    token = {"leaseTimestamp": str(_us(leased))}
    renewed = (
        v1.tasks().update(project="demo-app", taskqueue="shared", task="t1", newLeaseSeconds=120, body=token).execute()
    )
    assert renewed["retry_count"] == 1
    ack = v2.client.acknowledge_task
    refused(
        v2, Code.FAILED_PRECONDITION, lambda: ack(name=leased.name, schedule_time=type(leased).pb(leased).schedule_time)
    )


def test_a_task_created_through_v2beta2_is_leased_and_deleted_through_v1(both: tuple[Target, Any, Harness]) -> None:
    v2, v1, _ = both
    task = ct.Task(name=f"{QUEUE}/tasks/t2", pull_message=ct.PullMessage(payload=b"from v2", tag="blue"))
    created = v2.client.create_task(parent=QUEUE, task=task, retry=None)
    [leased] = lease(v1, queue="shared", project="s~demo-app", groupByTag=True, tag="blue")
    assert leased["id"] == "t2" and leased["payloadBase64"] == b64(b"from v2") and leased["retry_count"] == 1
    assert leased["queueName"] == "projects/s~demo-app/taskqueues/shared"
    assert _lease(v2.client) == []  # the v1 lease holds on v2beta2
    # Any location and any partition prefix name the same queue.
    elsewhere = "projects/demo-app/locations/asia-east1/queues/shared/tasks/t2"
    renewed = v2.client.renew_lease(
        request=ct.RenewLeaseRequest(
            name=elsewhere,
            schedule_time={
                "seconds": int(leased["leaseTimestamp"]) // US,
                "nanos": int(leased["leaseTimestamp"]) % US * 1000,
            },
            lease_duration=duration_pb2.Duration(seconds=30),
        ),
        retry=None,
    )
    assert renewed.name == elsewhere and created.name == f"{QUEUE}/tasks/t2"
    v1.tasks().delete(project="demo-app", taskqueue="shared", task="t2").execute()
    refused(v2, Code.NOT_FOUND, lambda: v2.client.get_task(name=f"{QUEUE}/tasks/t2", retry=None))


def test_push_features_are_unimplemented_with_a_message(both: tuple[Target, Any, Harness]) -> None:
    v2, _, _ = both
    push = ct.Task(app_engine_http_request=ct.AppEngineHttpRequest(relative_url="/work"))
    error = refused(v2, Code.UNIMPLEMENTED, lambda: v2.client.create_task(parent=QUEUE, task=push, retry=None))
    assert "pull queues" in error.message
    refused(v2, Code.UNIMPLEMENTED, lambda: v2.client.run_task(name=f"{QUEUE}/tasks/t1", retry=None))
    refused(v2, Code.UNIMPLEMENTED, lambda: v2.client.get_iam_policy(resource=QUEUE, retry=None))
    empty = ct.Task()
    refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.create_task(parent=QUEUE, task=empty, retry=None))


def test_malformed_names_are_invalid_arguments(both: tuple[Target, Any, Harness]) -> None:
    v2, _, _ = both
    bad = "projects/demo-app/locations/l/queues/bad_queue"
    refused(v2, Code.INVALID_ARGUMENT, lambda: _lease(v2.client, queue=bad))
    refused(v2, Code.INVALID_ARGUMENT, lambda: _lease(v2.client, queue="projects/UPPER~x/locations/l/queues/q"))


QUEUE_YAML = """\
queue:
- name: render
  mode: pull
  acl:
  - user_email: worker@example.com
  - writer_email: frontend@example.com
- name: mail
  mode: push
"""
TOKENS = {
    email: f"token-of-{email.split('@')[0]}-0123456789abcdef"
    for email in ("worker@example.com", "frontend@example.com")
}
RENDER = "projects/demo-app/locations/us-central1/queues/render"


@pytest.fixture
def guarded(transport: str, tmp_path: Path) -> Iterator[Callable[[str | None], ct.CloudTasksClient]]:
    """A bridge with queue.yaml, ACLs and tokens; clients for a token (or none) over the transport."""
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(f"{hash_token(token)} {email}\n" for email, token in TOKENS.items()))
    harness = memory_harness()
    app = create_app(Settings(queues=queues, auth="token", tokens_file=tokens), backend=harness.backend)
    from bridge.cloudtasks.grpc_server import GrpcFront

    server = GrpcFront(app.extensions["cloudtasks"], "127.0.0.1:0")
    http = BridgeServer(app)
    clients: list[ct.CloudTasksClient] = []

    def client(token: str | None) -> ct.CloudTasksClient:
        if transport == "grpc":
            made = grpc_client(f"127.0.0.1:{server.port}", token)
        else:
            made = rest_client(http.url, token)
        clients.append(made)
        return made

    yield client
    for made in clients:
        made.transport.close()
    server.stop()
    http.close()
    harness.close()


def _target(transport: str, client: ct.CloudTasksClient) -> Target:
    return Target(transport, transport, client, lambda _: None, lambda _: None)


@pytest.mark.memory
def test_queue_yaml_acls_and_tokens_apply_to_both_transports(
    transport: str, guarded: Callable[[str | None], ct.CloudTasksClient]
) -> None:
    producer, worker, anonymous = (
        guarded(TOKENS["frontend@example.com"]),
        guarded(TOKENS["worker@example.com"]),
        guarded(None),
    )
    task = ct.Task(pull_message=ct.PullMessage(payload=b"x"))
    bogus = guarded("not-a-known-token-0123456789")
    for client, call in (
        (anonymous, lambda: anonymous.create_task(parent=RENDER, task=task, retry=None)),
        (bogus, lambda: _lease(bogus, RENDER)),
    ):
        if transport == "grpc":
            refused(_target(transport, client), Code.UNAUTHENTICATED, call)
        else:
            # On a 401 the REST transport asks its credentials to refresh, which static
            # ones cannot: the caller sees google.auth's error (the raw 401 is tested below).
            with pytest.raises(google.auth.exceptions.GoogleAuthError):
                call()
    producer.create_task(parent=RENDER, task=task, retry=None)
    refused(_target(transport, producer), Code.PERMISSION_DENIED, lambda: _lease(producer, RENDER))
    refused(
        _target(transport, worker),
        Code.PERMISSION_DENIED,
        lambda: worker.create_task(parent=RENDER, task=task, retry=None),
    )
    [leased] = _lease(worker, RENDER)
    assert leased.pull_message.payload == b"x"


@pytest.mark.memory
def test_undeclared_and_push_queues_of_queue_yaml_are_refused(
    transport: str, guarded: Callable[[str | None], ct.CloudTasksClient]
) -> None:
    worker = guarded(TOKENS["worker@example.com"])
    target = _target(transport, worker)
    unknown = "projects/demo-app/locations/us-central1/queues/nope"
    task = ct.Task(pull_message=ct.PullMessage(payload=b"x"))
    refused(target, Code.NOT_FOUND, lambda: _lease(worker, unknown))
    refused(target, Code.NOT_FOUND, lambda: worker.get_task(name=f"{unknown}/tasks/t", retry=None))
    # CreateTask names a missing queue FAILED_PRECONDITION, as Cloud Tasks does.
    producer = guarded(TOKENS["frontend@example.com"])
    refused(
        _target(transport, producer),
        Code.FAILED_PRECONDITION,
        lambda: producer.create_task(parent=unknown, task=task, retry=None),
    )
    mail = "projects/demo-app/locations/us-central1/queues/mail"
    refused(target, Code.INVALID_ARGUMENT, lambda: _lease(worker, mail))


# -- the HTTP/JSON wire format, raw ------------------------------------------------------


@pytest.fixture
def http_front() -> Iterator[BridgeServer]:
    harness = memory_harness()
    server = BridgeServer(create_app(Settings(), backend=harness.backend))
    yield server
    server.close()
    harness.close()


@pytest.mark.memory
def test_rest_errors_are_googles_json_error_with_status_names(http_front: BridgeServer) -> None:
    base = "/v2beta2/projects/p/locations/l/queues/q"
    for method, path, body, status, name in (
        ("GET", "/v2beta2/projects/p/nothing", None, 404, "NOT_FOUND"),
        ("PUT", f"{base}/tasks", None, 404, "NOT_FOUND"),
        ("POST", f"{base}/tasks", b"{not json", 400, "INVALID_ARGUMENT"),
        ("POST", f"{base}/tasks", b'{"task": {"pullMessage": {"payload": 5}}}', 400, "INVALID_ARGUMENT"),
        (
            "POST",
            f"{base}/tasks:lease",
            b'{"maxTasks": 1, "leaseDuration": "60s", "colour": 1}',
            400,
            "INVALID_ARGUMENT",
        ),
        ("GET", f"{base}/tasks/t?responseView=SIDEWAYS", None, 400, "INVALID_ARGUMENT"),
        ("GET", f"{base}/tasks/missing", None, 404, "NOT_FOUND"),
    ):
        reply = http_front.request(method, path, body, {"Content-Type": "application/json"})
        assert reply.status == status, (path, reply.body)
        error = reply.json["error"]
        assert (error["code"], error["status"]) == (status, name) and error["message"], reply.body


@pytest.mark.memory
def test_rest_answers_enums_as_numbers_and_bytes_as_base64(http_front: BridgeServer) -> None:
    path = "/v2beta2/projects/p/locations/l/queues/q/tasks?%24alt=json%3Benum-encoding%3Dint"
    body = {
        "task": {"name": "projects/p/locations/l/queues/q/tasks/t1", "pullMessage": {"payload": "aGk=", "tag": "x"}},
        "responseView": 2,
    }
    reply = http_front.request("POST", path, body, {"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    assert reply.json["view"] == 2 and reply.json["pullMessage"] == {"payload": "aGk=", "tag": "x"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", reply.json["createTime"])


@pytest.mark.memory
def test_rest_answers_enums_as_names_unless_asked_for_numbers_and_takes_both(http_front: BridgeServer) -> None:
    name = "projects/p/locations/l/queues/q"
    queue, json_body = f"/v2beta2/{name}", {"Content-Type": "application/json"}
    body = {"task": {"name": f"{name}/tasks/t1", "pullMessage": {"payload": "aGk="}}, "responseView": "FULL"}
    created = http_front.request("POST", f"{queue}/tasks", body, json_body)
    assert created.status == 200 and created.json["view"] == "FULL", created.body
    assert http_front.request("GET", queue).json["state"] == "RUNNING"
    for view, alt, answer in (
        ("2", "", "FULL"),
        ("BASIC", "", "BASIC"),
        ("FULL", "&%24alt=json%3Benum-encoding%3Dint", 2),
    ):
        got = http_front.request("GET", f"{queue}/tasks/t1?responseView={view}{alt}")
        assert got.status == 200 and got.json["view"] == answer, got.body
    paused = http_front.request("POST", f"{queue}:pause?alt=json", {}, json_body)
    assert paused.json["state"] == "PAUSED", paused.body


@pytest.mark.memory
def test_rest_takes_mask_paths_in_either_spelling(http_front: BridgeServer) -> None:
    name = "projects/p/locations/l/queues/masked"
    json_body = {"Content-Type": "application/json"}
    queue = {"name": name, "pullTarget": {}, "retryConfig": {"maxAttempts": 4}}
    assert http_front.request("POST", "/v2beta2/projects/p/locations/l/queues", queue, json_body).status == 200
    for mask, attempts, answer in (
        ("retry_config.max_attempts", 5, 5),  # the protos' spelling, as the Node.js client sends it
        ("retryConfig.maxAttempts", 6, 6),  # JSON's, as gcloud sends it
        ("pull_target", 7, 6),
        ("pullTarget,retry_config", 8, 8),
    ):
        body = {"name": name, "pullTarget": {}, "retryConfig": {"maxAttempts": attempts}}
        reply = http_front.request("PATCH", f"/v2beta2/{name}?updateMask={mask}", body, json_body)
        assert reply.status == 200 and reply.json["retryConfig"] == {"maxAttempts": answer}, (mask, reply.body)
    for mask, fields in (("retry_config", {"retryConfig"}), ("retryConfig,state", {"retryConfig", "state"})):
        reply = http_front.request("GET", f"/v2beta2/{name}?readMask={mask}")
        assert reply.status == 200 and set(reply.json) == fields, (mask, reply.body)
    for verb, path in (("PATCH", f"/v2beta2/{name}?updateMask=colour"), ("GET", f"/v2beta2/{name}?readMask=colour")):
        reply = http_front.request(verb, path, {"name": name} if verb == "PATCH" else None, json_body)
        assert reply.status == 400 and "colour" in reply.json["error"]["message"], reply.body
    assert http_front.request("GET", f"/v2beta2/{name}").json["retryConfig"] == {"maxAttempts": 8}


# -- several gunicorn workers on real Redis ------------------------------------------------


@pytest.mark.redis
@pytest.mark.slow
def test_two_gunicorn_workers_each_serve_grpc_on_the_one_port(redis_server: RedisServer, tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    env = {**os.environ, "BRIDGE_BACKEND": redis_server.url + f"?prefix=v2w{port}", "BRIDGE_GRPC_PORT": str(grpc_port)}
    command = [sys.executable, "-m", "bridge", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path / "gunicorn.log"
    with serving_process(command, cwd=ROOT, env=env, port=port, log=log):
        # The master binds the HTTP port; each worker starts its gRPC server once booted.
        deadline = time.monotonic() + 30
        while len(_grpc_pids(log)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        queue = "projects/demo-app/locations/l/queues/two"
        names = []
        # A channel per task: new connections, spread over both workers by the kernel.
        for i in range(20):
            client = grpc_client(f"127.0.0.1:{grpc_port}")
            task = ct.Task(name=f"{queue}/tasks/t{i:02d}", pull_message=ct.PullMessage(payload=b"%d" % i))
            names.append(client.create_task(parent=queue, task=task, retry=None, timeout=30).name)
            client.transport.close()
        rest = rest_client(f"http://127.0.0.1:{port}")
        leased = _lease(rest, queue)
        leased += _lease(rest, queue)
        assert sorted(t.name for t in leased) == sorted(names)
        assert {t.pull_message.payload for t in leased} == {b"%d" % i for i in range(20)}
        rest.transport.close()
    assert len(_grpc_pids(log)) == 2, log.read_text()[-2000:]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("transport") == "grpc"]
    assert len([c for c in calls if c["method"].endswith("/CreateTask") and c["status"] == "OK"]) == 20


def _grpc_pids(log: Path) -> set[int]:
    lines = log.read_text().splitlines()
    return {json.loads(line)["pid"] for line in lines if "gRPC front listening" in line}


@pytest.mark.memory
def test_rest_without_credentials_is_a_401_unauthenticated(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(TOKENS['worker@example.com'])} worker@example.com\n")
    harness = memory_harness()
    server = BridgeServer(create_app(Settings(auth="token", tokens_file=tokens), backend=harness.backend))
    try:
        reply = server.request("GET", "/v2beta2/projects/p/locations/l/queues/q/tasks/t")
        assert reply.status == 401 and reply.json["error"]["status"] == "UNAUTHENTICATED", reply.body
        good = {"Authorization": f"Bearer {TOKENS['worker@example.com']}"}
        assert server.request("GET", "/v2beta2/projects/p/locations/l/queues/q/tasks/t", headers=good).status == 404
    finally:
        server.close()
        harness.close()


# -- compose's proxy profile, rehearsed ------------------------------------------------------


@pytest.mark.memory
def test_the_compose_proxy_profile_runs_the_staging_proxy_on_the_emulators_front() -> None:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    emulator, proxy = services["bridge"]["environment"], services["proxy"]["environment"]
    assert services["proxy"]["profiles"] == ["proxy"]
    assert proxy["BRIDGE_CLOUDTASKS_ENDPOINT"] == f"bridge:{emulator['BRIDGE_GRPC_PORT']}"
    assert f"127.0.0.1:{emulator['BRIDGE_GRPC_PORT']}:{emulator['BRIDGE_GRPC_PORT']}" in services["bridge"]["ports"]
    queues = ROOT / "queue.example.yaml"
    harness = memory_harness()
    front_app = create_app(Settings(queues=queues), backend=harness.backend)
    from bridge.cloudtasks.grpc_server import GrpcFront

    front = GrpcFront(front_app.extensions["cloudtasks"], "127.0.0.1:0")
    proxy_app = create_app(
        Settings(
            backend=proxy["BRIDGE_BACKEND"],
            queues=queues,
            backend_settings={"cloudtasks_endpoint": f"127.0.0.1:{front.port}"},
        )
    )
    v1_proxy, v1_emulator = BridgeServer(proxy_app), BridgeServer(front_app)
    try:
        api = v1_proxy.api()
        insert(api, "render", project="s~my-app", id="frame-1", payloadBase64=b64(b"frame 1"))
        [task] = lease(api, queue="render", project="s~my-app")
        assert task["payloadBase64"] == b64(b"frame 1") and task["retry_count"] == 1
        # The emulator's own v1 front sees the lease the proxy took through its Cloud Tasks front.
        assert lease(v1_emulator.api(), queue="render", project="my-app") == []
        api.tasks().delete(project="s~my-app", taskqueue="render", task="frame-1").execute()
    finally:
        v1_proxy.close()
        v1_emulator.close()
        proxy_app.extensions["bridge"].backend.close()
        front.stop()
        harness.close()


# -- the README's samples ----------------------------------------------------------------------


def _readme_samples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Cloud Tasks clients\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


@pytest.mark.memory
def test_the_readmes_cloud_tasks_samples_run_over_both_transports(capsys: pytest.CaptureFixture[str]) -> None:
    grpc_sample, rest_sample = _readme_samples()
    assert '"127.0.0.1:8123"' in grpc_sample and '"http://127.0.0.1:8080"' in rest_sample
    harness = memory_harness()
    app = create_app(Settings(), backend=harness.backend)
    from bridge.cloudtasks.grpc_server import GrpcFront

    front, http = GrpcFront(app.extensions["cloudtasks"], "127.0.0.1:0"), BridgeServer(app)
    try:
        grpc_run: dict[str, Any] = {}
        exec(grpc_sample.replace("127.0.0.1:8123", f"127.0.0.1:{front.port}"), grpc_run)
        grpc_run["client"].transport.close()
        # Created, leased and acknowledged: nothing left, as v1 sees it.
        assert http.api().tasks().list(project="my-app", taskqueue="render").execute().get("items") is None
        rest_run: dict[str, Any] = {}
        exec(rest_sample.replace("http://127.0.0.1:8080", http.url), rest_run)
        [task] = http.api().tasks().list(project="my-app", taskqueue="render").execute()["items"]
        assert rest_run["created"].name.endswith("/tasks/" + task["id"])
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", capsys.readouterr().out)
    finally:
        front.stop()
        http.close()
        harness.close()


# -- queue administration ---------------------------------------------------------------------


def test_update_queue_sets_max_attempts_which_v1_sees_as_max_leases(both: tuple[Target, Any, Harness]) -> None:
    v2, v1, _ = both
    queue = ct.Queue(name=QUEUE, retry_config=ct.RetryConfig(max_attempts=4))
    mask = {"paths": ["retry_config.max_attempts"]}
    updated = v2.client.update_queue(queue=queue, update_mask=mask, retry=None)
    assert updated.retry_config.max_attempts == 4 and updated.name == QUEUE
    assert v1.taskqueues().get(project="s~demo-app", taskqueue="shared").execute()["maxLeases"] == 4
    push = ct.Queue(name=QUEUE, app_engine_http_target=ct.AppEngineHttpTarget())
    refused(v2, Code.UNIMPLEMENTED, lambda: v2.client.update_queue(queue=push, retry=None))
    # Outside the mask, v1's maxLeases stays as it is.
    v2.client.update_queue(queue=ct.Queue(name=QUEUE), update_mask={"paths": ["pull_target"]}, retry=None)
    assert v1.taskqueues().get(project="s~demo-app", taskqueue="shared").execute()["maxLeases"] == 4


#: Settings of a Cloud Tasks queue that the bridge's pull queues cannot keep, each given.
NOT_KEPT = {
    "retry_config.max_retry_duration": ct.Queue(retry_config=ct.RetryConfig(max_retry_duration={"seconds": 300})),
    "retry_config.min_backoff": ct.Queue(retry_config=ct.RetryConfig(min_backoff={"seconds": 1})),
    "retry_config.max_doublings": ct.Queue(retry_config=ct.RetryConfig(max_doublings=3)),
    "rate_limits": ct.Queue(rate_limits=ct.RateLimits(max_burst_size=10)),
    "task_ttl": ct.Queue(task_ttl={"seconds": 3600}),
    "tombstone_ttl": ct.Queue(tombstone_ttl={"seconds": 3600}),
}


def _merged(given: ct.Queue, **fields: Any) -> ct.Queue:
    queue = ct.Queue(**fields)
    ct.Queue.pb(queue).MergeFrom(ct.Queue.pb(given))
    return queue


def test_create_and_update_queue_refuse_what_a_pull_queue_here_cannot_keep(both: tuple[Target, Any, Harness]) -> None:
    v2, _, _ = both
    parent = QUEUE.rsplit("/queues/", 1)[0]
    created = ct.Queue(name=QUEUE, pull_target=ct.PullTarget(), retry_config=ct.RetryConfig(max_attempts=3))
    v2.client.create_queue(parent=parent, queue=created, retry=None)
    create = partial(v2.client.create_queue, parent=parent, retry=None)
    update = partial(v2.client.update_queue, retry=None)
    for setting, given in NOT_KEPT.items():
        other = f"{parent}/queues/refused-{setting.replace('.', '-').replace('_', '-')}"
        error = refused(v2, Code.INVALID_ARGUMENT, partial(create, queue=_merged(given, name=other, pull_target={})))
        assert setting in error.message, error.message
        refused(v2, Code.NOT_FOUND, partial(v2.client.get_queue, name=other, retry=None))
        for paths in ([setting], [setting.split(".")[0]], []):
            changed = partial(update, queue=_merged(given, name=QUEUE), update_mask={"paths": paths})
            assert setting in refused(v2, Code.INVALID_ARGUMENT, changed).message
    assert v2.client.get_queue(name=QUEUE, retry=None).retry_config.max_attempts == 3
    # Given as what the queue has, a setting is taken: its default (unset, or zero), or the
    # bridge's --tombstone-seconds as tombstone_ttl (the project's Cloud Tasks backend sends it).
    zero = ct.Queue(name=QUEUE, retry_config=ct.RetryConfig(max_attempts=5, max_retry_duration={"seconds": 0}))
    assert update(queue=zero).retry_config.max_attempts == 5
    week = ct.Queue(name=QUEUE, tombstone_ttl={"seconds": Settings().tombstone_seconds})
    assert update(queue=week, update_mask={"paths": ["tombstone_ttl"]}).retry_config.max_attempts == 5
    refused(v2, Code.INVALID_ARGUMENT, partial(update, queue=ct.Queue(name=QUEUE, tombstone_ttl={"seconds": 60})))
    # A mask naming what the server sets, or nothing of a Queue, is refused.
    for path, said in (("state", "PauseQueue"), ("stats", "output only"), ("colour", "colour")):
        changed = partial(update, queue=zero, update_mask={"paths": [path]})
        assert said in refused(v2, Code.INVALID_ARGUMENT, changed).message
    assert v2.client.get_queue(name=QUEUE, retry=None).retry_config.max_attempts == 5


def test_errors_name_the_v2beta2_fields_not_v1s(both: tuple[Target, Any, Harness]) -> None:
    v2, _, _ = both
    created = v2.client.create_task(parent=QUEUE, task=ct.Task(pull_message=ct.PullMessage(payload=b"x")), retry=None)
    far = ct.Task(pull_message=ct.PullMessage(payload=b"x"))
    type(far).pb(far).schedule_time.FromSeconds(_us(created) // US + 31 * 24 * 3600)
    error = refused(v2, Code.INVALID_ARGUMENT, lambda: v2.client.create_task(parent=QUEUE, task=far, retry=None))
    assert "schedule_time" in error.message and "leaseTimestamp" not in error.message, error.message


def test_every_v1_field_a_backend_error_names_has_its_v2beta2_name() -> None:
    """The front words backend errors in v2beta2 fields through one table; a v1 field
    (from the Discovery document) in any error a backend or the access rules raise must be
    in it, or a v2beta2 caller would read a name its API does not have."""
    document = json.loads((ROOT / "api_data" / "taskqueue.v1beta2.json").read_text())
    fields: set[str] = set()
    _collect_fields(document, fields)
    errors = {cls.__name__ for cls in vars(backend_errors).values() if isinstance(cls, type)}
    named: dict[str, str] = {}
    for path in [*(ROOT / "backends").rglob("*.py"), *(ROOT / "bridge" / "access").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            called = getattr(node, "func", None)
            if not isinstance(node, ast.Call) or getattr(called, "id", getattr(called, "attr", None)) not in errors:
                continue
            for text in (part.value for part in ast.walk(node) if isinstance(part, ast.Constant)):
                for word in re.findall(r"[A-Za-z0-9]+", str(text)):
                    if word in fields and word != word.lower():
                        named[word] = str(path.relative_to(ROOT))
    assert {"leaseTimestamp", "maxLeases"} <= set(named)  # the scan sees the errors it is meant to
    missing = {word: where for word, where in named.items() if word not in convert.V2_FIELDS}
    assert not missing, f"v1 fields in backend errors without a v2beta2 name in convert.V2_FIELDS: {missing}"


def _collect_fields(node: Any, into: set[str]) -> None:
    """Every parameter and property name of a Discovery document."""
    if isinstance(node, dict):
        for key in ("parameters", "properties"):
            if isinstance(node.get(key), dict):
                into.update(node[key])
        for value in node.values():
            _collect_fields(value, into)
    elif isinstance(node, list):
        for value in node:
            _collect_fields(value, into)


def test_purge_empties_and_delete_drops_a_queue(both: tuple[Target, Any, Harness]) -> None:
    v2, v1, _ = both
    for i in range(3):
        insert(v1, "shared", project="demo-app", id=f"t{i}")
    purged = v2.client.purge_queue(name=QUEUE, retry=None)
    assert purged.name == QUEUE
    assert v1.tasks().list(project="demo-app", taskqueue="shared").execute().get("items") is None
    insert(v1, "shared", project="demo-app", id="t9")
    v2.client.delete_queue(name=QUEUE, retry=None)
    assert QUEUE not in [q.name for q in v2.client.list_queues(parent=QUEUE.rsplit("/queues/", 1)[0], retry=None)]
    refused(v2, Code.NOT_FOUND, lambda: v2.client.delete_queue(name=QUEUE, retry=None))
    refused(v2, Code.NOT_FOUND, lambda: v2.client.get_task(name=f"{QUEUE}/tasks/t9", retry=None))


def test_list_tasks_pages_through_every_task_once_in_eta_order(both: tuple[Target, Any, Harness]) -> None:
    v2, v1, _ = both
    for i in range(25):
        insert(v1, "shared", project="demo-app", id=f"t{i:02d}", payloadBase64=b64(b"%d" % i))
    pager = v2.client.list_tasks(request={"parent": QUEUE, "page_size": 10, "response_view": FULL}, retry=None)
    pages = list(pager.pages)
    assert [len(page.tasks) for page in pages] == [10, 10, 5]
    tasks = [task for page in pages for task in page.tasks]
    assert [task.name.rsplit("/", 1)[1] for task in tasks] == [f"t{i:02d}" for i in range(25)]
    assert tasks[7].pull_message.payload == b"7"
    basic = v2.client.list_tasks(parent=QUEUE, retry=None)
    assert {task.pull_message.payload for task in basic} == {b""}
    bad = {"parent": QUEUE, "page_token": "not-a-token"}
    refused(v2, Code.INVALID_ARGUMENT, lambda: list(v2.client.list_tasks(request=bad, retry=None)))
    refused(
        v2,
        Code.INVALID_ARGUMENT,
        lambda: list(v2.client.list_tasks(request={"parent": QUEUE, "page_size": 1001}, retry=None)),
    )


def test_list_queues_pages_through_the_projects_queues(both: tuple[Target, Any, Harness]) -> None:
    v2, _, _ = both
    parent = "projects/lister/locations/here"
    for i in range(5):
        v2.client.create_queue(
            parent=parent, queue=ct.Queue(name=f"{parent}/queues/q{i}", pull_target=ct.PullTarget()), retry=None
        )
    pages = list(v2.client.list_queues(request={"parent": parent, "page_size": 2}, retry=None).pages)
    assert [[q.name.rsplit("/", 1)[1] for q in page.queues] for page in pages] == [["q0", "q1"], ["q2", "q3"], ["q4"]]
    refused(
        v2,
        Code.UNIMPLEMENTED,
        lambda: list(v2.client.list_queues(request={"parent": parent, "filter": "x"}, retry=None)),
    )


@pytest.mark.memory
def test_queues_of_queue_yaml_are_changed_there_not_through_the_api(
    transport: str, guarded: Callable[[str | None], ct.CloudTasksClient]
) -> None:
    worker = guarded(TOKENS["worker@example.com"])
    target = _target(transport, worker)
    create = ct.Queue(name=RENDER, pull_target=ct.PullTarget())
    parent = RENDER.rsplit("/queues/", 1)[0]
    # Queue administration is for the admins; this bridge has none, so nobody may.
    refused(target, Code.PERMISSION_DENIED, lambda: worker.create_queue(parent=parent, queue=create, retry=None))
    refused(target, Code.PERMISSION_DENIED, lambda: worker.pause_queue(name=RENDER, retry=None))
    refused(target, Code.PERMISSION_DENIED, lambda: list(worker.list_queues(parent=parent, retry=None)))
    assert worker.get_queue(name=RENDER, retry=None).name == RENDER  # consumers may describe it


@pytest.mark.memory
def test_with_a_queue_file_create_update_and_delete_queue_are_refused(tmp_path: Path) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)
    harness = memory_harness()
    app = create_app(Settings(queues=queues), backend=harness.backend)
    v2 = front_target("grpc", app, "grpc", harness.advance_us)
    try:
        client, parent = v2.client, RENDER.rsplit("/queues/", 1)[0]
        declared = ct.Queue(name=RENDER, pull_target=ct.PullTarget())
        refused(v2, Code.ALREADY_EXISTS, lambda: client.create_queue(parent=parent, queue=declared, retry=None))
        other = ct.Queue(name=f"{parent}/queues/other", pull_target=ct.PullTarget())
        refused(v2, Code.NOT_FOUND, lambda: client.create_queue(parent=parent, queue=other, retry=None))
        refused(v2, Code.FAILED_PRECONDITION, lambda: client.update_queue(queue=declared, retry=None))
        refused(v2, Code.FAILED_PRECONDITION, lambda: client.delete_queue(name=RENDER, retry=None))
        assert [q.name for q in client.list_queues(parent=parent, retry=None)] == [RENDER]
        assert client.pause_queue(name=RENDER, retry=None).state == ct.Queue.State.PAUSED
    finally:
        v2.close()
        harness.close()


class _Exploding(MemoryBackend):
    """A backend with a bug: its lease raises what no backend should."""

    def lease(self, queue: Queue, request: LeaseRequest) -> LeaseResult:
        raise RuntimeError("secret internals")


@pytest.mark.memory
def test_a_backend_outage_is_unavailable_and_a_bug_internal_without_detail(transport: str) -> None:
    down = RedisBackend.from_url("redis://127.0.0.1:1/0")
    v2 = front_target(transport, create_app(Settings(), backend=down), transport, lambda _: None)
    try:
        error = refused(v2, Code.UNAVAILABLE, lambda: _lease(v2.client))
        assert "Redis" in error.message
    finally:
        v2.close()
        down.close()
    broken = _Exploding.from_url("memory://")
    v2 = front_target(transport, create_app(Settings(), backend=broken), transport, lambda _: None)
    try:
        error = refused(v2, Code.INTERNAL, lambda: _lease(v2.client))
        assert "secret" not in str(error.message)
        assert v2.client.create_task(parent=QUEUE, task=ct.Task(pull_message=ct.PullMessage()), retry=None).name
    finally:
        v2.close()
        broken.close()


@pytest.mark.memory
def test_grpc_refuses_a_request_larger_than_the_body_limit() -> None:
    harness = memory_harness()
    from bridge.cloudtasks.grpc_server import GrpcFront

    front = GrpcFront(create_app(Settings(), backend=harness.backend).extensions["cloudtasks"], "127.0.0.1:0")
    client = grpc_client(f"127.0.0.1:{front.port}")
    target = _target("grpc", client)
    try:
        huge = ct.Task(pull_message=ct.PullMessage(payload=b"x" * 2_000_000))
        refused(target, Code.RESOURCE_EXHAUSTED, lambda: client.create_task(parent=QUEUE, task=huge, retry=None))
        assert list(client.list_tasks(parent=QUEUE, retry=None)) == []
    finally:
        client.transport.close()
        front.stop()
        harness.close()


@pytest.mark.memory
def test_the_grpc_port_is_a_setting_and_starts_a_server_per_worker() -> None:
    from bridge.server.serving import gunicorn_options
    from bridge.settings import SettingsError

    with pytest.raises(SettingsError, match="grpc"):
        Settings(port=8080, grpc_port=8080)
    assert Settings.from_env({"BRIDGE_GRPC_PORT": "8123"}).grpc_port == 8123
    assert "post_worker_init" not in gunicorn_options(Settings())
    options = gunicorn_options(Settings(grpc_port=8123))
    assert options["post_worker_init"].args[0] == "127.0.0.1:8123" and "worker_exit" in options
