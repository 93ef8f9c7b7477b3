"""Redis going away: every call and the readiness probe answer 503, and all recover by themselves."""

from __future__ import annotations

from collections.abc import Iterator
from hashlib import sha1
from pathlib import Path

import pytest
import redis

from backends.redis_backend import SOURCES
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
