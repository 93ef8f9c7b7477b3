"""Scenarios of single tasks: insert, get, list, delete, names, payloads, bad input."""

from __future__ import annotations

import json

from backends.limits import US
from bridge_tools.compat.scenarios.base import DAY_US, now_us, scenario, with_uri
from bridge_tools.compat.session import Session, b64

MIB = 1024 * 1024


@scenario("insert-named")
def insert_named(s: Session) -> None:
    """A named insert returns the stored task; the server owns enqueue time and retry_count."""
    a = s.insert("a", tag="red", queueName=s.queue, retry_count=7, enqueueTimestamp="5", kind="taskqueues#task")
    s.get("get-a", a)
    long = s.insert("long-form", queueName=s.queue_name())
    s.list_tasks("list", [a, long])


@scenario("insert-eta")
def insert_eta(s: Session) -> None:
    """leaseTimestamp on insert is the first availability: kept as given (a past one sorts
    first, as App Engine kept it), now when 0."""
    later = s.insert("later", eta_us=now_us() + 3600 * US)
    past = s.insert("past", eta_us=1000)
    zero = s.insert("zero", leaseTimestamp="0")
    s.lease("lease", [past, zero])
    # past and zero share the ETA of one lease: ties go by name.
    s.list_tasks("list", [past, zero, later])


@scenario("insert-unnamed")
def insert_unnamed(s: Session) -> None:
    """An insert without a name gets a fresh generated name each time."""
    g1 = s.insert(None, symbol="g1")
    g2 = s.insert(None, symbol="g2", id="")
    s.get("get-g1", g1)
    s.list_tasks("list", [g1, g2])


@scenario("insert-duplicate")
def insert_duplicate(s: Session) -> None:
    """A second insert of a live name is 409 duplicate and leaves the first task alone."""
    a = s.insert("a", payload=b"first")
    again = s.tasks.insert(project=s.project, taskqueue=s.queue, body={"id": s.name("a"), "payloadBase64": b64(b"2")})
    s.call("insert-a-again", again, s.error(409, "duplicate", "id"))
    s.get("get-a", a)


@scenario("insert-bad-input")
def insert_bad_input(s: Session) -> None:
    """Bad task bodies are 400 invalid, naming the field, and store nothing."""
    too_long = s.name("x" * 500)[:501]
    cases = {
        "not-url-safe": ({"payloadBase64": "a+b/"}, "payloadBase64"),
        "not-base64": ({"payloadBase64": "a"}, "payloadBase64"),
        "name-with-space": ({"id": "has space"}, "id"),
        "name-501-chars": ({"id": too_long}, "id"),
        "tag-501-bytes": ({"tag": "é" * 250 + "x"}, "tag"),
        "other-queue": ({"queueName": "projects/other-app/taskqueues/other"}, "queueName"),
        "eta-31-days-ahead": ({"leaseTimestamp": str(now_us() + 31 * DAY_US)}, "leaseTimestamp"),
        "eta-not-a-number": ({"leaseTimestamp": "soon"}, "leaseTimestamp"),
        "body-not-an-object": (["a", "list"], "body"),
    }
    for label, (body, location) in cases.items():
        request = s.tasks.insert(project=s.project, taskqueue=s.queue, body=body)
        s.call(label, request, s.error(400, "invalid", location))
    s.list_tasks("list", [])


@scenario("insert-names-and-tags")
def insert_names_and_tags(s: Session) -> None:
    """Names of 500 characters and tags of 500 UTF-8 bytes are the largest accepted."""
    longest = s.insert("n" * (499 - len(s.token)), label="insert-longest")
    tagged = s.insert("tagged", tag="é" * 250)
    s.get("get-longest", longest)
    s.list_tasks("list", [longest, tagged])


@scenario("payload-encoding")
def payload_encoding(s: Session) -> None:
    """Payloads are URL-safe base64; unpadded input comes back padded; no payload is empty."""
    s.insert("url-safe", payload=b"\xfb\xff\xfe")
    unpadded = s.insert("unpadded", payload=b"hi", wire_payload="aGk")
    s.insert("empty", payload=b"", wire_payload=None)
    s.get("get-unpadded", unpadded)


@scenario("payload-limit")
def payload_limit(s: Session) -> None:
    """A payload of exactly 1 MiB is accepted and returned whole; one byte more is 400."""
    big = bytes(range(256)) * (MIB // 256)
    task = s.insert("big", payload=big)
    s.get("get-big", task)
    request = s.tasks.insert(project=s.project, taskqueue=s.queue, body={"payloadBase64": b64(big + b"x")})
    s.call("insert-too-big", request, s.error(400, "invalid", "payloadBase64"))
    s.list_tasks("list", [task])


@scenario("get-long-url")
def get_long_url(s: Session) -> None:
    """A GET too long for a URL is tunnelled by the client as POST with X-HTTP-Method-Override."""
    a = s.insert("a", tag="t")
    long = "q" * 2100
    request = s.tasks.get(project=s.project, taskqueue=s.queue, task=s.name("a"), quotaUser=long)
    s.call("get-tunnelled", request, s.ok(s.task_json(a)))
    request = s.tasks.list(project=s.project, taskqueue=s.queue, quotaUser=long)
    s.call("list-tunnelled", request, s.ok(s.tasks_json("taskqueues#tasks", [a], payload=False)))


@scenario("get-unknown")
def get_unknown(s: Session) -> None:
    """Get and delete of a name never used are 404 notFound."""
    missing = s.name("missing")
    s.call("get", s.tasks.get(project=s.project, taskqueue=s.queue, task=missing), s.error(404, "notFound", "task"))
    request = s.tasks.delete(project=s.project, taskqueue=s.queue, task=missing)
    s.call("delete", request, s.error(404, "notFound", "task"))


@scenario("list-order")
def list_order(s: Session) -> None:
    """List returns every live task without payloads, by ETA; future tasks are not leased."""
    s.list_tasks("list-empty", [])
    base = now_us() + 3600 * US
    # Later names get earlier ETAs, so that ETA order is neither name nor insert order.
    t1, t2, t3 = (s.insert(f"t{i}", eta_us=base - i * 1000) for i in (1, 2, 3))
    s.list_tasks("list", [t3, t2, t1])
    s.lease("lease-none", [])


@scenario("list-limit")
def list_limit(s: Session) -> None:
    """List returns at most 100 tasks, the earliest ETAs first."""
    # 120, not 101: a server that lists some 100 of 101 in another order would still
    # return the first 100 once in 101 runs, and the check would pass by chance.
    tasks = [s.insert(f"t{i:03d}") for i in range(120)]
    s.list_tasks("list", tasks[:100])


@scenario("delete-and-tombstones")
def delete_and_tombstones(s: Session) -> None:
    """Delete works on a leased task, answers 204 with no body and reserves the name."""
    a = s.insert("a")
    s.lease("lease", [a])
    s.delete("delete", a)
    name = s.name("a")
    s.call(
        "get-deleted", s.tasks.get(project=s.project, taskqueue=s.queue, task=name), s.error(404, "notFound", "task")
    )
    again = s.tasks.delete(project=s.project, taskqueue=s.queue, task=name)
    s.call("delete-again", again, s.error(404, "notFound", "task"))
    reuse = s.tasks.insert(project=s.project, taskqueue=s.queue, body={"id": name})
    s.call("insert-deleted-name", reuse, s.error(409, "duplicate", "id"))
    renew = s.tasks.update(project=s.project, taskqueue=s.queue, task=name, newLeaseSeconds=60)
    s.call("renew-deleted", renew, s.error(404, "notFound", "task"))
    s.list_tasks("list", [])
    s.lease("lease-after", [])


@scenario("error-envelope")
def error_envelope(s: Session) -> None:
    """Routing and protocol errors come in Google's envelope too."""
    route = with_uri(s.tasks.list(project=s.project, taskqueue=s.queue), "/no/such/route")
    s.call("unknown-route", route, s.error(404, "notFound"))
    wrong_verb = s.tasks.get(project=s.project, taskqueue=s.queue, task=s.name("a"))
    wrong_verb.method = "PUT"
    s.call("method-not-allowed", wrong_verb, s.error(405, "httpMethodNotAllowed"))
    broken = s.tasks.insert(project=s.project, taskqueue=s.queue, body={"id": s.name("a")})
    broken.body = json.dumps({"id": s.name("a")})[:-1]
    broken.body_size = len(broken.body)
    s.call("body-not-json", broken, s.error(400, "parseError"))
    lease = s.tasks.lease(project=s.project, taskqueue=s.queue, numTasks=1, leaseSecs=60)
    s.call("missing-parameter", with_uri(lease, drop="leaseSecs"), s.error(400, "required", "leaseSecs"))
    s.list_tasks("list", [])
