"""Every policy of the gate against every surface of the bridge, the surfaces read from the app.

The surfaces are what the app itself serves: each rule and verb of Flask's URL map (the
v2beta2 REST rules expanded into their routes, `bridge.cloudtasks.rest.ROUTES`), each RPC
of the Cloud Tasks service as the official client knows it (its ``gapic_metadata.json``)
over gRPC, and each v1 method as a part of a batch. `SPECS` says how to call each one and
what it is (public, about a queue or for admins, state-changing, answering payloads); a
surface the app serves without a spec, or a spec of a surface the app no longer serves,
fails `test_every_surface_has_a_spec`, so a route or RPC added later is tested here, or
this suite fails.

The policies (`POLICIES`), each run against every surface it applies to:

    allow-list      a project --projects does not serve is 404 / NOT_FOUND
    auth            no credentials: 401 / UNAUTHENTICATED (the console's pages: to sign-in)
    acl             an identity the queue's ACL (or --admins) does not allow: 403 / PERMISSION_DENIED
    cross-site      a state-changing request from another origin, or with a body any page
                    can send, is 403 and reaches no backend (HTTP only: no page speaks gRPC)
    bad-input       malformed input is a 4xx / INVALID_ARGUMENT and reaches no backend
    budget          an answer with payloads stays under --max-response-bytes
    request-id      the caller's id comes back and names the call's log line
    metrics         the call is counted under its method

A refusal (allow-list, auth, acl, cross-site, bad-input) must also reach no backend:
every world's backend counts its calls.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from flask import Flask
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, timestamp_pb2
from prometheus_client import REGISTRY

from backends.base import NewTask, Queue
from backends.observed import observe
from backends.redis.memory import MemoryBackend
from bridge import create_app
from bridge.access.auth import hash_token
from bridge.cloudtasks.convert import HTTP_STATUS
from bridge.cloudtasks.grpc_server import GrpcFront
from bridge.cloudtasks.methods import METHODS, SERVICE
from bridge.cloudtasks.rest import ROUTES
from bridge.console.access import Access
from bridge.settings import Settings
from tests.support.surfaces import rest_path

pytestmark = pytest.mark.memory

MIB = 1024 * 1024
ADMIN, WORKER, STRANGER = "ops@example.com", "worker@example.com", "stranger@example.com"
TOKENS = {email: f"token-of-{email.split('@')[0]}-0123456789abcdef" for email in (ADMIN, WORKER, STRANGER)}
QUEUE_YAML = """\
queue:
- name: q
  mode: pull
  acl:
  - user_email: worker@example.com
  - writer_email: worker@example.com
- name: big
  mode: pull
"""
EVIL = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
BAD_UTF8 = b'{"id": "\xff\xfe"}'
V1 = "/taskqueue/v1beta2/projects/{project}/taskqueues/{queue}"
CONSOLE = "/console/projects/{project}/queues/{queue}"
CONSOLE_API = "/console/api/projects/{project}/queues/{queue}"


# -- what each surface is, and how to call it -------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How to call one surface, and what it is."""

    #: HTTP: the verb and the path ({project}, {queue}, {task} filled in); gRPC: the RPC.
    verb: str
    path: str
    #: The method its log line and counts name.
    method: str
    body: Any = None
    #: How the body is sent: "json", "form" (the console's pages) or "raw" (bytes as they are).
    kind: str = "json"
    #: Where it names a project: "path", "query" (a filter), or "" (nowhere).
    project: str = "path"
    #: Who may call it: "public", "queue" (the queue's ACL) or "admin" (--admins only).
    access: str = "queue"
    #: Whether it answers task payloads (the response budget applies).
    payloads: bool = False
    #: Whether it reads a JSON body (an invalid one must be a 4xx).
    reads_body: bool = False
    #: The console's pages: without a session they lead to the sign-in page.
    page: bool = False
    #: A batch: its answer's status is its first part's.
    batch: bool = False


def _v1(verb: str, tail: str, method: str, **options: Any) -> Spec:
    return Spec(verb, V1 + tail, f"taskqueue.{method}", **options)


V1_SPECS = {
    "taskqueue.taskqueues.get": _v1("GET", "", "taskqueues.get"),
    "taskqueue.tasks.insert": _v1(
        "POST", "/tasks", "tasks.insert", body={"payloadBase64": "eA"}, reads_body=True, payloads=True
    ),
    "taskqueue.tasks.list": _v1("GET", "/tasks", "tasks.list", payloads=True),
    "taskqueue.tasks.get": _v1("GET", "/tasks/{task}", "tasks.get", payloads=True),
    "taskqueue.tasks.update": _v1("POST", "/tasks/{task}?newLeaseSeconds=0", "tasks.update", body={}, reads_body=True),
    "taskqueue.tasks.patch": _v1("PATCH", "/tasks/{task}?newLeaseSeconds=0", "tasks.patch", body={}, reads_body=True),
    "taskqueue.tasks.delete": _v1("DELETE", "/tasks/{task}", "tasks.delete"),
    "taskqueue.tasks.lease": _v1("POST", "/tasks/lease?numTasks=100&leaseSecs=0", "tasks.lease", payloads=True),
}
#: The v1 rules by verb and Flask rule.
V1_RULES = {
    ("GET", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>"): "taskqueue.taskqueues.get",
    ("POST", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>/tasks"): "taskqueue.tasks.insert",
    ("GET", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>/tasks"): "taskqueue.tasks.list",
    ("GET", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>/tasks/<task>"): "taskqueue.tasks.get",
    ("POST", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>/tasks/<task>"): "taskqueue.tasks.update",
    ("PATCH", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>/tasks/<task>"): "taskqueue.tasks.patch",
    ("DELETE", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>/tasks/<task>"): "taskqueue.tasks.delete",
    ("POST", "/taskqueue/v1beta2/projects/<project>/taskqueues/<taskqueue>/tasks/lease"): "taskqueue.tasks.lease",
}


def _batch_body(spec: Spec) -> str:
    """One part calling ``spec``, with {project}, {queue}, {task} left to fill."""
    body = "" if spec.body is None else json.dumps(spec.body).replace("{", "{{").replace("}", "}}")
    head = f"{spec.verb} {spec.path} HTTP/1.1\r\nContent-Type: application/json\r\nX-Request-Id: {{part_id}}\r\n"
    return f"--b\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\n{head}\r\n{body}\r\n--b--\r\n"


def _batch(spec: Spec, path: str = "/batch") -> Spec:
    return Spec(
        "POST",
        path,
        spec.method,
        body=_batch_body(spec),
        kind="batch",
        access=spec.access,
        payloads=spec.payloads,
        batch=True,
    )


HTTP_SPECS: dict[str, Spec] = {
    **{f"{verb} {rule}": V1_SPECS[method] for (verb, rule), method in V1_RULES.items()},
    "GET /discovery/v1/apis/<api>/<version>/rest": Spec(
        "GET", "/discovery/v1/apis/taskqueue/v1beta2/rest", "discovery", project="", access="public"
    ),
    "GET /api/<api>/<version>": Spec("GET", "/api/taskqueue/v1beta2", "discovery_short", project="", access="public"),
    # The batch endpoints: the policies apply to their parts, seen in the first part's answer.
    "POST /batch": _batch(V1_SPECS["taskqueue.tasks.lease"]),
    "POST /batch/taskqueue/v1beta2": _batch(V1_SPECS["taskqueue.tasks.get"], "/batch/taskqueue/v1beta2"),
    "GET /healthz": Spec("GET", "/healthz", "healthz", project="", access="public"),
    "GET /readyz": Spec("GET", "/readyz", "readyz", project="", access="public"),
    "GET /metrics": Spec("GET", "/metrics", "metrics", project="", access="public"),
    "GET /": Spec("GET", "/", "home", project="", access="public"),
    "GET /console/": Spec(
        "GET", "/console/?project={project}", "console.queues", project="query", access="admin", page=True
    ),
    f"GET {CONSOLE.format(project='<project>', queue='<taskqueue>')}": Spec(
        "GET", CONSOLE, "console.queue", access="admin", page=True
    ),
    f"GET {CONSOLE.format(project='<project>', queue='<taskqueue>')}/tasks/<task>": Spec(
        "GET", CONSOLE + "/tasks/{task}", "console.task", access="admin", page=True, payloads=True
    ),
    f"POST {CONSOLE.format(project='<project>', queue='<taskqueue>')}/actions/<action>": Spec(
        "POST",
        CONSOLE + "/actions/pause",
        "console.queue_action",
        body={"csrf": "x"},
        kind="form",
        access="admin",
        page=True,
    ),
    f"POST {CONSOLE.format(project='<project>', queue='<taskqueue>')}/tasks/<task>/actions/<action>": Spec(
        "POST",
        CONSOLE + "/tasks/{task}/actions/release",
        "console.task_action",
        body={"csrf": "x"},
        kind="form",
        access="admin",
        page=True,
    ),
    "GET /console/sign-in": Spec("GET", "/console/sign-in", "console.sign_in", project="", access="public"),
    "POST /console/sign-in": Spec(
        "POST", "/console/sign-in", "console.sign_in", body={"token": "x"}, kind="form", project="", access="public"
    ),
    "POST /console/sign-out": Spec(
        "POST", "/console/sign-out", "console.sign_out", body={}, kind="form", project="", access="admin", page=True
    ),
    "GET /console/static/<path:filename>": Spec(
        "GET", "/console/static/console.css", "console.static", project="", access="public"
    ),
    "GET /console/api/queues": Spec(
        "GET", "/console/api/queues?project={project}", "console_api.queues", project="query", access="admin"
    ),
    f"GET {CONSOLE_API.format(project='<project>', queue='<taskqueue>')}": Spec(
        "GET", CONSOLE_API, "console_api.queue", access="admin"
    ),
    f"GET {CONSOLE_API.format(project='<project>', queue='<taskqueue>')}/tasks": Spec(
        "GET", CONSOLE_API + "/tasks", "console_api.tasks", access="admin"
    ),
    f"GET {CONSOLE_API.format(project='<project>', queue='<taskqueue>')}/dead-letters": Spec(
        "GET", CONSOLE_API + "/dead-letters", "console_api.dead_letters", access="admin"
    ),
    f"POST {CONSOLE_API.format(project='<project>', queue='<taskqueue>')}/actions/<action>": Spec(
        "POST", CONSOLE_API + "/actions/pause", "console_api.queue_action", body={}, access="admin"
    ),
    f"POST {CONSOLE_API.format(project='<project>', queue='<taskqueue>')}/tasks/<task>/actions/<action>": Spec(
        "POST", CONSOLE_API + "/tasks/{task}/actions/release", "console_api.task_action", body={}, access="admin"
    ),
}

#: The Flask rules that are one transport's catch-all, expanded into that transport's routes.
EXPANDED = {"/v2beta2/<path:path>": "v2beta2 REST", "/api/queue/update": "v2beta2 REST"}
SCHEDULE = "2030-01-01T00:00:00Z"
#: The body each RPC's REST route takes (its request message's fields, in JSON).
REST_BODIES: dict[str, Any] = {
    "CreateQueue": {"name": "projects/{project}/locations/us-central1/queues/q", "pullTarget": {}},
    "UpdateQueue": {"pullTarget": {}},
    "CreateTask": {"task": {"pullMessage": {"payload": "eA=="}}},
    "LeaseTasks": {"maxTasks": 100, "leaseDuration": "0s", "responseView": "FULL"},
    "RenewLease": {"scheduleTime": SCHEDULE, "leaseDuration": "60s"},
    "CancelLease": {"scheduleTime": SCHEDULE},
    "AcknowledgeTask": {"scheduleTime": SCHEDULE},
}
#: The RPCs about a queue's tasks (its ACL), the others are for admins (or answer UNIMPLEMENTED).
TASK_RPCS = {"GetQueue", "CreateTask", "GetTask", "ListTasks", "DeleteTask", "LeaseTasks", "RenewLease"}
TASK_RPCS |= {"CancelLease", "AcknowledgeTask"}
PAYLOAD_RPCS = {"LeaseTasks", "ListTasks", "GetTask"}
#: RPCs that answer UNIMPLEMENTED before anything else: no project, no queue, no rights.
UNIMPLEMENTED = {"RunTask", "GetIamPolicy", "SetIamPolicy", "TestIamPermissions", "UploadQueueYaml"}


def _rest_spec(route: Any) -> Spec:
    body = REST_BODIES.get(route.method, {} if route.body else None)
    query = "?responseView=FULL" if route.method in ("ListTasks", "GetTask") else ""
    path = rest_path(route, "{project}", "{queue}", "{task}") + query
    return Spec(
        route.verb,
        path,
        f"{SERVICE}/{route.method}",
        body=body,
        project="" if route.method in UNIMPLEMENTED else "path",
        access="queue" if route.method in TASK_RPCS else "admin",
        payloads=route.method in PAYLOAD_RPCS,
        reads_body=bool(route.body),
    )


REST_SPECS = {f"REST {route.verb} {route.method}": _rest_spec(route) for route in ROUTES}


def _names(values: dict[str, str]) -> dict[str, str]:
    queue = f"projects/{values['project']}/locations/us-central1/queues/{values['queue']}"
    return {"location": queue.rsplit("/queues/", 1)[0], "queue": queue, "task": f"{queue}/tasks/{values['task']}"}


def _stamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(SCHEDULE)
    return stamp


GRPC_REQUESTS: dict[str, Callable[[dict[str, str]], Any]] = {
    "ListQueues": lambda n: ct.ListQueuesRequest(parent=n["location"]),
    "GetQueue": lambda n: ct.GetQueueRequest(name=n["queue"]),
    "CreateQueue": lambda n: ct.CreateQueueRequest(
        parent=n["location"], queue=ct.Queue(name=n["queue"], pull_target=ct.PullTarget())
    ),
    "UpdateQueue": lambda n: ct.UpdateQueueRequest(queue=ct.Queue(name=n["queue"], pull_target=ct.PullTarget())),
    "DeleteQueue": lambda n: ct.DeleteQueueRequest(name=n["queue"]),
    "PurgeQueue": lambda n: ct.PurgeQueueRequest(name=n["queue"]),
    "PauseQueue": lambda n: ct.PauseQueueRequest(name=n["queue"]),
    "ResumeQueue": lambda n: ct.ResumeQueueRequest(name=n["queue"]),
    "CreateTask": lambda n: ct.CreateTaskRequest(
        parent=n["queue"], task=ct.Task(pull_message=ct.PullMessage(payload=b"x"))
    ),
    "GetTask": lambda n: ct.GetTaskRequest(name=n["task"], response_view=ct.Task.View.FULL),
    "ListTasks": lambda n: ct.ListTasksRequest(parent=n["queue"], response_view=ct.Task.View.FULL),
    "DeleteTask": lambda n: ct.DeleteTaskRequest(name=n["task"]),
    "LeaseTasks": lambda n: ct.LeaseTasksRequest(
        parent=n["queue"],
        max_tasks=100,
        lease_duration=duration_pb2.Duration(seconds=0),
        response_view=ct.Task.View.FULL,
    ),
    "RenewLease": lambda n: ct.RenewLeaseRequest(
        name=n["task"], schedule_time=_stamp(), lease_duration=duration_pb2.Duration(seconds=60)
    ),
    "CancelLease": lambda n: ct.CancelLeaseRequest(name=n["task"], schedule_time=_stamp()),
    "AcknowledgeTask": lambda n: ct.AcknowledgeTaskRequest(name=n["task"], schedule_time=_stamp()),
    "RunTask": lambda n: ct.RunTaskRequest(name=n["task"]),
    "GetIamPolicy": lambda n: METHODS["GetIamPolicy"].request(resource=n["queue"]),
    "SetIamPolicy": lambda n: METHODS["SetIamPolicy"].request(resource=n["queue"]),
    "TestIamPermissions": lambda n: METHODS["TestIamPermissions"].request(resource=n["queue"]),
    "UploadQueueYaml": lambda n: ct.UploadQueueYamlRequest(app_id=n["queue"]),
}
GRPC_SPECS = {
    f"gRPC {name}": Spec(
        "gRPC",
        name,
        f"{SERVICE}/{name}",
        project="" if name in UNIMPLEMENTED else "path",
        access="queue" if name in TASK_RPCS else "admin",
        payloads=name in PAYLOAD_RPCS,
    )
    for name in GRPC_REQUESTS
}
PART_SPECS = {f"batch part {method}": _batch(spec) for method, spec in V1_SPECS.items()}
SPECS: dict[str, Spec] = {**HTTP_SPECS, **REST_SPECS, **GRPC_SPECS, **PART_SPECS}


# -- the surfaces the app serves ------------------------------------------------------


def served_surfaces(app: Flask) -> set[str]:
    """Every surface of the app, named as `SPECS` names them."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule in EXPANDED:
            continue
        for verb in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.add(f"{verb} {rule.rule}")
    assert EXPANDED.keys() <= {rule.rule for rule in app.url_map.iter_rules()}
    found |= {f"REST {route.verb} {route.method}" for route in ROUTES}
    # The service as the official client calls it, over gRPC.
    metadata = json.loads(
        importlib.resources.files("google.cloud.tasks_v2beta2").joinpath("gapic_metadata.json").read_text()
    )
    service = metadata["services"]["CloudTasks"]["clients"]
    found |= {f"gRPC {name}" for name in service["grpc"]["rpcs"]}
    assert set(service["rest"]["rpcs"]) == {route.method for route in ROUTES}, "an RPC without a REST route"
    found |= {f"batch part {method.id}" for method in app.extensions["bridge"].discovery.methods}
    return found


# -- the worlds the policies run in ---------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes
    request_id: str | None = None
    #: The whole answer's bytes (a batch's, when the status and body are its first part's).
    size: int = 0


@dataclass
class World:
    """A bridge with some settings, its gRPC server, and a count of its backend's calls."""

    app: Flask
    grpc_port: int
    calls: list[str] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def access(self) -> Access:
        """The console's access rules as the app has them (sessions, CSRF tokens)."""
        bridge = self.app.extensions["bridge"]
        return Access(bridge.settings, bridge.authenticator)

    def call(self, spec: Spec, values: dict[str, str], **how: Any) -> Answer:
        if spec.verb == "gRPC":
            return self._grpc(spec, values, **how)
        return self._http(spec, values, **how)

    def _http(
        self,
        spec: Spec,
        values: dict[str, str],
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        kind: str | None = None,
        query: str | None = None,
        cookie: str | None = None,
        request_id: str = "",
    ) -> Answer:
        path = spec.path.format(**values)
        fields = dict(headers or {})
        if request_id:
            fields["X-Request-Id"] = request_id
        data: Any = body
        content_type = kind
        if spec.page and spec.kind == "form":
            # The console's forms carry the CSRF token of the visitor's cookie.
            cookie = cookie or "surface-visitor"
        if data is None and spec.body is not None:
            if spec.kind == "form":
                token = self.access().csrf_token(cookie or "")
                form = {**spec.body, "csrf": token} if "csrf" in spec.body else spec.body
                data, content_type = form, content_type or "application/x-www-form-urlencoded"
            elif spec.kind == "batch":
                text = spec.body.format(**values, part_id=request_id or "part")
                data, content_type = text.encode(), content_type or "multipart/mixed; boundary=b"
            else:
                data = json.dumps(spec.body).replace("{project}", values["project"]).encode()
                content_type = content_type or "application/json"
        environ = {} if query is None else {"QUERY_STRING": query}
        client = self.app.test_client()
        if cookie is not None:
            client.set_cookie("bridge_console", cookie, path="/console")
        reply = client.open(
            path, method=spec.verb, data=data, content_type=content_type, headers=fields, environ_overrides=environ
        )
        content = reply.get_data()
        reply.close()
        if spec.batch and reply.status_code == 200:
            part = content.split(b"\r\n\r\n", 1)[1]
            head, _, rest = part.partition(b"\r\n\r\n")
            found = [line for line in head.split(b"\r\n") if line.lower().startswith(b"x-request-id:")]
            echoed = found[0].split(b":", 1)[1].strip().decode() if found else None
            return Answer(int(head.split(b" ")[1]), rest, echoed, len(content))
        return Answer(reply.status_code, content, reply.headers.get("X-Request-Id"), len(content))

    def _grpc(
        self,
        spec: Spec,
        values: dict[str, str],
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        request_id: str = "",
        **ignored: Any,
    ) -> Answer:
        metadata = [(key.lower(), value) for key, value in (headers or {}).items()]
        if request_id:
            metadata.append(("x-request-id", request_id))
        if body is None:
            message = GRPC_REQUESTS[spec.path](_names(values))
            raw = type(message).pb(message) if hasattr(type(message), "pb") else message
            body = raw.SerializeToString()
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            rpc = channel.unary_unary(f"/{SERVICE}/{spec.path}")
            try:
                reply, call = rpc.with_call(body, metadata=metadata, timeout=30)
            except grpc.RpcError as error:
                trailing = dict(error.trailing_metadata() or ())
                status = HTTP_STATUS.get(error.code(), 500)
                details = (error.details() or "").encode()
                return Answer(status, details, trailing.get("x-request-id"), len(details))
        return Answer(200, reply, dict(call.trailing_metadata() or ()).get("x-request-id"), len(reply))


def _world(tmp: Path, settings: dict[str, Any], fill: Callable[[MemoryBackend], None]) -> World:
    memory = MemoryBackend.from_url("memory://")
    fill(memory)
    calls: list[str] = []

    def count(verb: str, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        calls.append(verb)
        return call(*args, **kwargs)

    app = create_app(Settings(**settings), backend=observe(memory, count))
    server = GrpcFront(app.extensions["cloudtasks"], "127.0.0.1:0")
    return World(app, server.port, calls, [server.stop, memory.close])


def _tasks(memory: MemoryBackend) -> None:
    for queue in (Queue("app", "q"), Queue("other", "q")):
        memory.insert(queue, NewTask("t1", b"x"))


def _big(memory: MemoryBackend) -> None:
    for n in range(5):
        memory.insert(Queue("app", "big"), NewTask(f"b{n}", bytes([n]) * MIB))


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    tmp = tmp_path_factory.mktemp("surfaces")
    queues, tokens = tmp / "queue.yaml", tmp / "tokens.txt"
    queues.write_text(QUEUE_YAML)
    tokens.write_text("".join(f"{hash_token(token)} {email}\n" for email, token in TOKENS.items()))
    secured = {"auth": "token", "tokens_file": tokens, "admins": (ADMIN,), "queues": queues}
    made = {
        "open": _world(tmp, {}, _tasks),
        "projects": _world(tmp, {"projects": ("app",)}, _tasks),
        "secured": _world(tmp, secured, _tasks),
        "budget": _world(tmp, {"max_response_bytes": 5 * MIB // 2}, _big),
    }
    yield made
    for world in made.values():
        for close in world.closers:
            close()


VALUES = {"project": "app", "queue": "q", "task": "t1"}


def _refused(world: World, answer: Answer, status: int, spec: Spec) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert world.calls == [], f"refused, yet the backend was asked: {world.calls}"


# -- the policies ----------------------------------------------------------------------


def allow_list(spec: Spec, worlds: dict[str, World]) -> None:
    world = worlds["projects"]
    assert world.call(spec, VALUES).status < 500
    world.calls.clear()
    _refused(world, world.call(spec, {**VALUES, "project": "other"}), 404, spec)


def auth(spec: Spec, worlds: dict[str, World]) -> None:
    world = worlds["secured"]
    world.calls.clear()
    answer = world.call(spec, VALUES)
    if spec.page:
        assert answer.status == 302 and world.calls == []
    else:
        _refused(world, answer, 401, spec)
    world.calls.clear()
    bogus = world.call(spec, VALUES, headers={"Authorization": "Bearer not-a-token-0123456789"})
    if spec.page:
        assert bogus.status == 302 and world.calls == []
    else:
        _refused(world, bogus, 401, spec)


def acl(spec: Spec, worlds: dict[str, World]) -> None:
    world = worlds["secured"]
    world.calls.clear()
    if spec.page:
        answer = world.call(spec, VALUES, cookie=world.access().session(STRANGER))
    else:
        answer = world.call(spec, VALUES, headers={"Authorization": f"Bearer {TOKENS[STRANGER]}"})
    _refused(world, answer, 403, spec)
    if spec.access == "queue":  # the queue's ACL lets its worker through
        allowed = world.call(spec, VALUES, headers={"Authorization": f"Bearer {TOKENS[WORKER]}"})
        assert allowed.status not in (401, 403), allowed.body[:300]


def cross_site(spec: Spec, worlds: dict[str, World]) -> None:
    world = worlds["open"]
    world.calls.clear()
    _refused(world, world.call(spec, VALUES, headers=EVIL), 403, spec)
    _refused(world, world.call(spec, VALUES, headers={"Origin": "null"}), 403, spec)
    if spec.kind in ("json", "batch") and (spec.body is not None or spec.verb == "POST"):
        # No Origin at all (an older browser), but a body any page can send.
        plain = world.call(spec, VALUES, body=b'{"x": 1}', kind="text/plain;charset=UTF-8")
        _refused(world, plain, 403, spec)
    # The bridge's own pages (Sec-Fetch-Site: same-origin) are not refused for it.
    own = world.call(spec, VALUES, headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert own.status != 403 or spec.page, own.body[:300]


def bad_input(spec: Spec, worlds: dict[str, World]) -> None:
    world = worlds["open"]
    world.calls.clear()
    if spec.verb == "gRPC":
        _refused(world, world.call(spec, VALUES, body=b"\xff\xff\xff\xff"), 400, spec)
        return
    # As gunicorn hands over a raw request line: bytes that are not UTF-8.
    _refused(world, world.call(spec, VALUES, query="q=\xff\xfe"), 400, spec)
    if spec.project == "path":
        answer = world.call(spec, {**VALUES, "project": "UP~x"})
        assert 400 <= answer.status < 500 and world.calls == [], (answer.status, world.calls)
    if spec.reads_body:
        answer = world.call(spec, VALUES, body=BAD_UTF8, kind="application/json")
        assert 400 <= answer.status < 500 and world.calls == [], (answer.status, world.calls)


def budget(spec: Spec, worlds: dict[str, World]) -> None:
    world = worlds["budget"]
    answer = world.call(spec, {**VALUES, "queue": "big", "task": "b0"})
    assert answer.status == 200, answer.body[:300]
    assert answer.size <= world.app.extensions["bridge"].settings.max_response_bytes


def request_id(spec: Spec, worlds: dict[str, World], caplog: pytest.LogCaptureFixture) -> None:
    ident = "surface-" + spec.method.replace("/", "-")[-60:]
    with caplog.at_level(logging.DEBUG, logger="bridge.request"):  # probes log at DEBUG
        answer = worlds["open"].call(spec, VALUES, request_id=ident)
    assert answer.request_id == ident
    lines = [r.__dict__["fields"] for r in caplog.records if r.name == "bridge.request"]
    assert (ident, spec.method) in {(line["request_id"], line["method"]) for line in lines}, lines


def _counted(method: str) -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "bridge_http_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["method"] == method
    )


def metrics(spec: Spec, worlds: dict[str, World]) -> None:
    before = _counted(spec.method)
    worlds["open"].call(spec, VALUES)
    assert _counted(spec.method) == before + 1


Policy = Callable[..., None]
#: Each policy, and which surfaces it applies to (the others are listed with why not).
POLICIES: dict[str, tuple[Policy, Callable[[Spec], str | None]]] = {
    "allow-list": (allow_list, lambda s: None if s.project else "names no project"),
    "auth": (auth, lambda s: "public" if s.access == "public" else None),
    "acl": (
        acl,
        lambda s: "public"
        if s.access == "public"
        else "refuses everyone (UNIMPLEMENTED)"
        if s.method.rsplit("/", 1)[-1] in UNIMPLEMENTED
        else None,
    ),
    "cross-site": (
        cross_site,
        lambda s: "no page speaks gRPC"
        if s.verb == "gRPC"
        else "changes nothing"
        if s.verb == "GET"
        else None,
    ),
    "bad-input": (bad_input, lambda s: None),
    "budget": (budget, lambda s: None if s.payloads else "answers no payload"),
    "request-id": (request_id, lambda s: None),
    "metrics": (metrics, lambda s: None),
}


def _pairs() -> list[Any]:
    pairs = []
    for name, spec in SPECS.items():
        for policy, (_, why_not) in POLICIES.items():
            if why_not(spec) is None:
                pairs.append(pytest.param(policy, name, id=f"{policy}:{name}"))
    return pairs


def test_every_surface_has_a_spec() -> None:
    app = create_app(Settings(), backend=MemoryBackend.from_url("memory://"))
    served = served_surfaces(app)
    assert sorted(served - SPECS.keys()) == [], "surfaces without a spec: tell this suite how to call them"
    assert sorted(SPECS.keys() - served) == [], "specs of surfaces the app does not serve"
    assert set(METHODS) == {name.removeprefix("gRPC ") for name in served if name.startswith("gRPC ")}


@pytest.mark.parametrize(("policy", "surface"), _pairs())
def test_the_policy_holds_on_the_surface(
    policy: str, surface: str, worlds: dict[str, World], caplog: pytest.LogCaptureFixture
) -> None:
    check, _ = POLICIES[policy]
    if check is request_id:
        check(SPECS[surface], worlds, caplog)
    else:
        check(SPECS[surface], worlds)


def test_the_count_of_surfaces_and_policies() -> None:
    """The figures the suite's report quotes; a surface or policy added changes them."""
    applicable = len(_pairs())
    kinds = {
        "HTTP routes": len(HTTP_SPECS),
        "v2beta2 REST": len(REST_SPECS),
        "gRPC": len(GRPC_SPECS),
        "batch parts": len(PART_SPECS),
    }
    print(f"{len(SPECS)} surfaces ({kinds}) x {len(POLICIES)} policies: {applicable} pairs apply")
    assert len(SPECS) == sum(kinds.values()) and applicable >= len(SPECS) * 4
