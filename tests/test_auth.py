"""Token authentication and queue ACLs: who may call what, and refusals that change nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.access.acl import ROLES
from bridge.access.auth import hash_token
from bridge.taskqueue.discovery import Discovery
from tests.support.api import PROJECT, ids, insert, lease, listed, stats
from tests.support.harness import Variant
from tests.support.http import BridgeServer, Reply, error_of

pytestmark = pytest.mark.memory


@pytest.fixture
def variant() -> Variant:
    """Credentials are checked before the backend is reached: one backend is enough here."""
    return Variant("memory")


PRODUCER = "frontend@example.com"
CONSUMER = "worker@example.com"
ADMIN = "ops@example.com"
STRANGER = "visitor@example.com"
TOKENS = {email: f"token-of-{email.split('@')[0]}-0123456789abcdef" for email in (PRODUCER, CONSUMER, ADMIN, STRANGER)}

QUEUE_YAML = f"""\
queue:
- name: render
  mode: pull
  acl:
  - user_email: {CONSUMER}
  - writer_email: {PRODUCER}
- name: open
  mode: pull
"""
RENDER = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/render"
JSON = {"Content-Type": "application/json"}

#: Every method, as a raw request on queue render whose task t1 exists.
CALLS = {
    "taskqueues.get": ("GET", "?getStats=true", None),
    "tasks.insert": ("POST", "/tasks", b'{"id": "new"}'),
    "tasks.lease": ("POST", "/tasks/lease?numTasks=1&leaseSecs=60", None),
    "tasks.list": ("GET", "/tasks", None),
    "tasks.get": ("GET", "/tasks/t1", None),
    "tasks.update": ("POST", "/tasks/t1?newLeaseSeconds=60", b"{}"),
    "tasks.patch": ("PATCH", "/tasks/t1?newLeaseSeconds=60", b"{}"),
    "tasks.delete": ("DELETE", "/tasks/t1", None),
}
CONSUMER_CALLS = ["tasks.lease", "tasks.list", "tasks.get", "tasks.update", "tasks.patch", "tasks.delete"]


def write_tokens(path: Path, tokens: dict[str, str]) -> Path:
    path.write_text("# test tokens\n\n" + "".join(f"{hash_token(token)}  {email}\n" for email, token in tokens.items()))
    return path


@pytest.fixture
def secure(make_bridge: Callable[..., BridgeServer], tmp_path: Path) -> Callable[..., BridgeServer]:
    """Starts a bridge with token auth, the queue file above and ADMIN as admin."""
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)
    tokens = write_tokens(tmp_path / "tokens.txt", TOKENS)

    def start(**settings: Any) -> BridgeServer:
        options: dict[str, Any] = {"auth": "token", "tokens_file": tokens, "queues": queues, "admins": (ADMIN,)}
        return make_bridge(**{**options, **settings})

    return start


@pytest.fixture
def server(secure: Callable[..., BridgeServer]) -> BridgeServer:
    server = secure()
    insert(server.api(TOKENS[PRODUCER]), queue="render", id="t1")
    return server


def snapshot(server: BridgeServer, queue: str = "render") -> Any:
    """What the backend holds for ``queue``, as an admin sees it."""
    admin = server.api(TOKENS[ADMIN])
    return listed(admin, queue=queue), stats(admin, queue=queue)


def call(server: BridgeServer, name: str, authorization: str | None) -> Reply:
    method, path, body = CALLS[name]
    headers = dict(JSON)
    if authorization is not None:
        headers["Authorization"] = authorization
    return server.request(method, RENDER + path, body, headers)


def detail(reply: Reply, status: int, reason: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    error = reply.json["error"]
    assert error["code"] == status
    [found] = error["errors"]
    assert found["reason"] == reason and found["domain"] == "global"
    return found  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", CALLS)
def test_every_method_without_credentials_is_401_required_and_changes_nothing(server: BridgeServer, name: str) -> None:
    before = snapshot(server)
    reply = call(server, name, None)
    found = detail(reply, 401, "required")
    assert found["message"] == "Login Required"
    assert (found["locationType"], found["location"]) == ("header", "Authorization")
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="taskqueue"'
    assert snapshot(server) == before


BAD_HEADERS = [
    ("", "required", None),
    ("Bearer", "authError", "invalid_request"),
    ("Bearer ", "authError", "invalid_request"),
    ("Basic d29ya2VyOnNlY3JldA==", "authError", "invalid_request"),
    (TOKENS[CONSUMER], "authError", "invalid_request"),
    (f"Bearer {TOKENS[CONSUMER]} extra", "authError", "invalid_request"),
    ("Bearer wrong-token-0123456789abcdef", "authError", "invalid_token"),
    (f"Bearer {TOKENS[CONSUMER]}x", "authError", "invalid_token"),
    (f"Bearer {hash_token(TOKENS[CONSUMER])}", "authError", "invalid_token"),
]


@pytest.mark.parametrize(
    "authorization, reason, bearer_error",
    BAD_HEADERS,
    ids=["empty", "scheme-only", "scheme-and-space", "basic", "no-scheme", "two-words", "wrong", "longer", "the-hash"],
)
def test_a_malformed_or_wrong_credential_is_401_and_changes_nothing(
    server: BridgeServer, authorization: str, reason: str, bearer_error: str | None
) -> None:
    before = snapshot(server)
    reply = call(server, "tasks.delete", authorization)
    found = detail(reply, 401, reason)
    assert found["location"] == "Authorization"
    challenge = 'Bearer realm="taskqueue"' + (f', error="{bearer_error}"' if bearer_error else "")
    assert reply.headers["WWW-Authenticate"] == challenge
    assert TOKENS[CONSUMER] not in reply.body.decode()
    assert snapshot(server) == before


def test_the_scheme_is_case_insensitive(server: BridgeServer) -> None:
    assert call(server, "tasks.list", f"bearer {TOKENS[CONSUMER]}").status == 200
    assert call(server, "tasks.list", f"BEARER {TOKENS[CONSUMER]}").status == 200


def test_the_google_client_gets_401_without_a_token_and_with_a_wrong_one(server: BridgeServer) -> None:
    before = snapshot(server)
    for api, reason in ((server.api(), "required"), (server.api("not-a-known-token-at-all"), "authError")):
        error_of(api.tasks().lease(project=PROJECT, taskqueue="render", numTasks=1, leaseSecs=60), 401, reason)
        error_of(api.tasks().insert(project=PROJECT, taskqueue="render", body={"id": "x"}), 401, reason)
    assert snapshot(server) == before


def test_credentials_are_checked_before_the_request_is_validated_or_the_queue_looked_up(
    server: BridgeServer,
) -> None:
    unknown_queue = server.request("GET", f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/nope/tasks")
    detail(unknown_queue, 401, "required")
    bad_parameter = server.request("POST", RENDER + "/tasks/lease?numTasks=0&leaseSecs=-1")
    detail(bad_parameter, 401, "required")
    bad_body = server.request("POST", RENDER + "/tasks", b"{not json", JSON)
    detail(bad_body, 401, "required")


def test_a_producer_may_insert_and_describe_the_queue(server: BridgeServer) -> None:
    api = server.api(TOKENS[PRODUCER])
    assert insert(api, queue="render", id="t2")["id"] == "t2"
    queue = api.taskqueues().get(project=PROJECT, taskqueue="render", getStats=True).execute()
    assert queue["stats"]["totalTasks"] == 2


@pytest.mark.parametrize("name", CONSUMER_CALLS)
def test_a_producer_may_not_consume_and_changes_nothing(server: BridgeServer, name: str) -> None:
    before = snapshot(server)
    reply = call(server, name, f"Bearer {TOKENS[PRODUCER]}")
    found = detail(reply, 403, "forbidden")
    assert found["message"] == f"Permission denied: {PRODUCER} may not call {name} on queue render"
    assert "WWW-Authenticate" not in reply.headers
    assert snapshot(server) == before


def test_a_consumer_may_lease_renew_list_get_and_delete(server: BridgeServer) -> None:
    api = server.api(TOKENS[CONSUMER])
    [task] = lease(api, queue="render", secs=60)
    assert task["id"] == "t1"
    body = {"leaseTimestamp": task["leaseTimestamp"]}
    renewed = api.tasks().update(project=PROJECT, taskqueue="render", task="t1", newLeaseSeconds=120, body=body)
    body = {"leaseTimestamp": renewed.execute()["leaseTimestamp"]}
    api.tasks().patch(project=PROJECT, taskqueue="render", task="t1", newLeaseSeconds=0, body=body).execute()
    assert ids(listed(api, queue="render")) == ["t1"]
    assert api.tasks().get(project=PROJECT, taskqueue="render", task="t1").execute()["retry_count"] == 1
    assert api.taskqueues().get(project=PROJECT, taskqueue="render").execute()["id"].endswith("/render")
    api.tasks().delete(project=PROJECT, taskqueue="render", task="t1").execute()
    assert listed(api, queue="render") == []


def test_a_consumer_may_not_insert_and_changes_nothing(server: BridgeServer) -> None:
    before = snapshot(server)
    api = server.api(TOKENS[CONSUMER])
    envelope = error_of(api.tasks().insert(project=PROJECT, taskqueue="render", body={"id": "t9"}), 403, "forbidden")
    assert envelope["error"]["message"] == f"Permission denied: {CONSUMER} may not call tasks.insert on queue render"
    assert snapshot(server) == before


def test_an_identity_in_no_acl_may_do_nothing_on_a_queue_with_one(server: BridgeServer) -> None:
    before = snapshot(server)
    for name in CALLS:
        detail(call(server, name, f"Bearer {TOKENS[STRANGER]}"), 403, "forbidden")
    assert snapshot(server) == before


def test_a_refusal_does_not_tell_whether_the_task_exists(server: BridgeServer) -> None:
    producer = f"Bearer {TOKENS[PRODUCER]}"
    existing = server.request("GET", RENDER + "/tasks/t1", headers={"Authorization": producer})
    missing = server.request("GET", RENDER + "/tasks/never-was", headers={"Authorization": producer})
    assert (existing.status, existing.json) == (missing.status, missing.json) == (403, existing.json)
    deleted = server.request("DELETE", RENDER + "/tasks/never-was", headers={"Authorization": producer})
    assert (
        deleted.json["error"]["message"] == f"Permission denied: {PRODUCER} may not call tasks.delete on queue render"
    )


def test_a_queue_without_an_acl_is_open_to_every_authenticated_caller(server: BridgeServer) -> None:
    stranger = server.api(TOKENS[STRANGER])
    insert(stranger, queue="open", id="o1")
    assert ids(lease(stranger, queue="open")) == ["o1"]
    assert ids(listed(server.api(TOKENS[PRODUCER]), queue="open")) == ["o1"]
    # Open to the authenticated only.
    error_of(server.api().tasks().list(project=PROJECT, taskqueue="open"), 401, "required")


def test_with_acl_default_closed_a_queue_without_an_acl_serves_only_admins(
    secure: Callable[..., BridgeServer],
) -> None:
    server = secure(acl_default="closed")
    insert(server.api(TOKENS[ADMIN]), queue="open", id="o1")
    before = snapshot(server, "open")
    for email in (STRANGER, PRODUCER, CONSUMER):
        api = server.api(TOKENS[email])
        error_of(api.tasks().insert(project=PROJECT, taskqueue="open", body={"id": "o2"}), 403, "forbidden")
        error_of(api.tasks().lease(project=PROJECT, taskqueue="open", numTasks=1, leaseSecs=60), 403, "forbidden")
        error_of(api.tasks().delete(project=PROJECT, taskqueue="open", task="o1"), 403, "forbidden")
    assert snapshot(server, "open") == before
    # A queue with an ACL follows it, whatever the default.
    assert insert(server.api(TOKENS[PRODUCER]), queue="render", id="t2")["id"] == "t2"
    assert ids(lease(server.api(TOKENS[CONSUMER]), queue="render")) == ["t2"]


def test_without_a_queue_file_every_queue_follows_the_acl_default(
    make_bridge: Callable[..., BridgeServer], tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens.txt", TOKENS)
    open_bridge = make_bridge(auth="token", tokens_file=tokens)
    assert insert(open_bridge.api(TOKENS[STRANGER]), queue="anything", id="a1")["id"] == "a1"
    closed = make_bridge(auth="token", tokens_file=tokens, acl_default="closed", admins=(ADMIN,))
    error_of(closed.api(TOKENS[STRANGER]).tasks().list(project=PROJECT, taskqueue="anything"), 403, "forbidden")
    assert listed(closed.api(TOKENS[ADMIN]), queue="anything")[0]["id"] == "a1"


def test_admins_may_do_everything_and_are_reported_in_the_acl(server: BridgeServer) -> None:
    admin = server.api(TOKENS[ADMIN])
    insert(admin, queue="render", id="t2")
    assert ids(lease(admin, queue="render")) == ["t1", "t2"]
    admin.tasks().delete(project=PROJECT, taskqueue="render", task="t2").execute()
    acl = admin.taskqueues().get(project=PROJECT, taskqueue="render").execute()["acl"]
    assert acl == {"adminEmails": [ADMIN], "consumerEmails": [CONSUMER], "producerEmails": [PRODUCER]}


def test_emails_match_the_acl_without_regard_to_case(secure: Callable[..., BridgeServer], tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "mixed.txt", {"Worker@Example.COM": "mixed-case-token-0123456789"})
    server = secure(tokens_file=tokens, admins=())
    assert lease(server.api("mixed-case-token-0123456789"), queue="render") == []


def test_discovery_and_other_routes_stay_public(server: BridgeServer) -> None:
    for path in ("/discovery/v1/apis/taskqueue/v1beta2/rest", "/api/taskqueue/v1beta2"):
        reply = server.request("GET", path)
        assert reply.status == 200
        # Still no scopes: the Google client must not go looking for credentials of its own.
        assert not reply.json.get("auth", {}).get("oauth2", {}).get("scopes")
    assert server.request("GET", "/nothing/here").status == 404


def test_with_auth_none_nobody_is_asked_and_acls_are_not_enforced(
    make_bridge: Callable[..., BridgeServer], tmp_path: Path
) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)
    api = make_bridge(queues=queues, auth="none").api()
    insert(api, queue="render", id="t1")
    assert ids(lease(api, queue="render")) == ["t1"]


def test_every_method_of_the_discovery_document_has_its_roles() -> None:
    # A method missing from the table would be for admins only: say so on purpose, not by accident.
    assert {method.id for method in Discovery.load().methods} == set(ROLES)


def test_health_probes_stay_public_and_metrics_asks_for_credentials_when_set(
    secure: Callable[..., BridgeServer],
) -> None:
    for server, metrics_status in ((secure(), 200), (secure(metrics_auth=True), 401)):
        assert server.token is None
        assert server.request("GET", "/healthz").status == 200
        assert server.request("GET", "/readyz").status == 200
        assert server.request("GET", "/metrics").status == metrics_status
    guarded = secure(metrics_auth=True)
    stranger = guarded.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKENS[STRANGER]}"})
    assert stranger.status == 200 and b"bridge_" in stranger.body
    assert guarded.request("GET", "/metrics", headers={"Authorization": "Bearer wrong"}).status == 401
