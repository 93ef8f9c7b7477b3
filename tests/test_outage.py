"""Redis going away: every call and the readiness probe answer 503, and all recover by themselves."""

from __future__ import annotations

from collections.abc import Iterator
from hashlib import sha1
from pathlib import Path

import pytest
import redis

from backends.errors import Unavailable
from backends.redis.backend import SOURCES, _translated
from bridge import create_app
from bridge.settings import Settings
from tests.support.http import BridgeServer, serving
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

BASE = "/taskqueue/v1beta2/projects/s~demo-app/taskqueues/work"
CALLS = [
    ("POST", "/tasks", b'{"id": "t2"}'),
    ("POST", "/tasks/lease?numTasks=1&leaseSecs=60", None),
    ("GET", "/tasks", None),
    ("GET", "/tasks/t1", None),
    ("POST", "/tasks/t1?newLeaseSeconds=60", b"{}"),
    ("DELETE", "/tasks/t1", None),
    ("GET", "?getStats=true", None),
    ("GET", "", None),
]


@pytest.fixture
def own_redis(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def server(own_redis: RedisServer) -> Iterator[BridgeServer]:
    app = create_app(Settings(backend=own_redis.url))
    with serving(app) as server:
        yield server
    app.extensions["bridge"].backend.close()


def test_every_call_answers_503_while_redis_is_down_and_works_again_after(
    own_redis: RedisServer, server: BridgeServer
) -> None:
    assert server.request("POST", BASE + "/tasks", b'{"id": "t1"}').status == 200
    own_redis.stop()
    for method, path, body in CALLS:
        # The raw client gives up after 30 s; a hung call would fail here.
        reply = server.request(method, BASE + path, body)
        assert reply.status == 503, (method, path, reply.body)
        error = reply.json["error"]
        assert error["errors"][0]["reason"] == "backendError"
        assert "Redis" in error["message"] and "Traceback" not in error["message"]
    own_redis.start()  # same port, empty data: this Redis keeps nothing on disk
    assert server.request("POST", BASE + "/tasks", b'{"id": "t3"}').status == 200
    lease = server.request("POST", BASE + "/tasks/lease?numTasks=5&leaseSecs=60")
    assert lease.status == 200
    assert [task["id"] for task in lease.json["items"]] == ["t3"]


def test_readiness_fails_while_redis_is_down_and_recovers_with_the_scripts_loaded(
    own_redis: RedisServer, server: BridgeServer
) -> None:
    assert server.request("GET", "/readyz").status == 200
    own_redis.stop()
    down = server.request("GET", "/readyz")
    assert down.status == 503
    assert down.json["error"]["errors"][0]["reason"] == "backendError"
    assert server.request("GET", "/healthz").status == 200, "liveness does not depend on Redis"
    own_redis.start()  # a new server: it knows none of the scripts
    assert server.request("GET", "/readyz").status == 200
    client = redis.Redis(port=own_redis.port)
    try:
        assert client.script_exists(*(sha1(source.encode()).hexdigest() for source in SOURCES.values())) == [
            True
        ] * len(SOURCES)
    finally:
        client.close()


def test_the_first_call_after_a_redis_restart_succeeds(own_redis: RedisServer, server: BridgeServer) -> None:
    """No call ran while Redis was down, so the connections kept for the scripts are
    stale; each is checked before use, as redis-py's pool checks its own."""
    for n in range(3):
        assert server.request("POST", BASE + "/tasks", f'{{"id": "before{n}"}}'.encode()).status == 200
    own_redis.stop()
    own_redis.start()
    assert server.request("GET", "/readyz").status == 200
    assert server.request("POST", BASE + "/tasks", b'{"id": "after"}').status == 200
    assert server.request("POST", BASE + "/tasks/lease?numTasks=5&leaseSecs=60").status == 200


def test_scripts_flushed_again_while_reloading_are_retried_then_answer_503(
    own_redis: RedisServer, server: BridgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = server.app.extensions["bridge"].backend.inner
    client = backend.client
    load = client.script_load
    flushes = {"left": 1}

    def load_then_lose(source: str) -> str:
        # Another client's SCRIPT FLUSH lands between the reload and the retry.
        sha = load(source)
        if flushes["left"]:
            flushes["left"] -= 1
            client.script_flush()
        return sha  # type: ignore[no-any-return]

    monkeypatch.setattr(client, "script_load", load_then_lose)
    client.script_flush()
    assert server.request("POST", BASE + "/tasks", b'{"id": "t1"}').status == 200, "two NoScriptErrors in a row"
    flushes["left"] = 100
    client.script_flush()
    reply = server.request("POST", BASE + "/tasks", b'{"id": "t2"}')
    assert reply.status == 503, reply.body
    assert reply.json["error"]["errors"][0]["reason"] == "backendError"


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ClusterDownError("The cluster is down"),
        redis.exceptions.TryAgainError("Keys in request don't hash to the same slot"),
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
        redis.exceptions.ClusterError("TTL exhausted."),
        redis.exceptions.SlotNotCoveredError("Command # 1 (EVALSHA) does not cover slot 1"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_redis_outages_are_503_by_their_class_whatever_their_text(error: Exception) -> None:
    with pytest.raises(Unavailable):
        with _translated():
            raise error


def test_a_full_redis_with_noeviction_answers_503_and_keeps_every_task(own_redis: RedisServer) -> None:
    client = redis.Redis(port=own_redis.port)
    app = create_app(Settings(backend=own_redis.url))
    try:
        with serving(app) as server:
            assert server.request("POST", BASE + "/tasks", b'{"id": "t0"}').status == 200
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", str(used + 200_000))
            payload = '"' + "A" * 40_000 + '"'
            statuses = [
                server.request("POST", BASE + "/tasks", f'{{"id": "t{i}", "payloadBase64": {payload}}}'.encode()).status
                for i in range(1, 20)
            ]
            assert 503 in statuses and set(statuses) <= {200, 503}, statuses
            stored = statuses.count(200) + 1
            client.config_set("maxmemory", "0")
            assert server.request("GET", BASE + "?getStats=true").json["stats"]["totalTasks"] == stored
    finally:
        app.extensions["bridge"].backend.close()
        client.close()
