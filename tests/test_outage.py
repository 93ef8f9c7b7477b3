"""Redis going away: every call and the readiness probe answer 503, and all recover by
themselves; the start-up line, /readyz and the log say why in one line, the log once
per outage."""

from __future__ import annotations

import datetime
import logging
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from hashlib import sha1
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backends.errors import Unavailable
from backends.redis.backend import SOURCES, RedisBackend
from backends.redis.outages import translated
from bridge import create_app
from bridge.server.serving import backend_answer
from bridge.settings import Settings
from tests.support.http import BridgeServer, serving
from tests.support.redis_server import RedisServer, free_port

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
        with translated():
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


# -- why, in one line ------------------------------------------------------------------


@pytest.fixture
def start_server(redis_binary: str, tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Starts a redis-server with these options on a free port (its plain port, or its TLS
    port with ``--tls-port``) and returns the port once it accepts connections."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> int:
        port = free_port()
        ports = ["--port", "0", "--tls-port", str(port)] if "--tls-cert-file" in options else ["--port", str(port)]
        command = [redis_binary, *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *options]
        processes.append(subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                assert time.monotonic() < deadline and processes[-1].poll() is None, f"redis-server {options}"
                time.sleep(0.05)

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def _answer(url: str) -> str:
    """What the start-up line says of a backend at ``url``."""
    backend = RedisBackend.from_url(url)
    try:
        answer = backend_answer(backend)
    finally:
        backend.close()
    assert "\n" not in answer
    return answer


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "redis.crt", folder / "redis.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, private


def test_the_start_up_line_says_why_redis_does_not_answer(start_server: Callable[..., int]) -> None:
    closed = free_port()
    assert (
        f"NOT ANSWERING (The task store (Redis) cannot take the request now: connection refused at 127.0.0.1:{closed};"
        in (_answer(f"redis://127.0.0.1:{closed}/0"))
    )
    secured = start_server("--requirepass", "s3cret")
    assert f"127.0.0.1:{secured} asks for a password: give it in the URL" in _answer(f"redis://127.0.0.1:{secured}/0")
    assert f"127.0.0.1:{secured} refused the URL's user or password" in _answer(f"redis://:wrong@127.0.0.1:{secured}/0")
    assert _answer(f"redis://:s3cret@127.0.0.1:{secured}/0") == "answering"


def test_the_start_up_line_says_when_tls_and_plain_redis_meet(start_server: Callable[..., int], tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls = start_server("--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no")
    plain = start_server()
    assert f"127.0.0.1:{tls} closed the connection: a TLS port reached with redis://?" in _answer(
        f"redis://127.0.0.1:{tls}/0"
    )
    assert f"TLS with 127.0.0.1:{tls} failed: its certificate is not trusted (self-signed certificate)" in _answer(
        f"rediss://127.0.0.1:{tls}/0"
    )
    # The TLS handshake waits for an answer that a plain port never sends.
    assert f"127.0.0.1:{plain} did not answer in time (2 s to connect, 3 s a call): is that port TLS?" in _answer(
        f"rediss://127.0.0.1:{plain}/0"
    )


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends_and_readyz_says_why(
    own_redis: RedisServer, server: BridgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert server.request("POST", BASE + "/tasks", b'{"id": "t1"}').status == 200
    own_redis.stop()
    for method, path, body in CALLS:
        assert server.request(method, BASE + path, body).status == 503
    ready = server.request("GET", "/readyz")
    assert ready.status == 503
    cause = f"connection refused at 127.0.0.1:{own_redis.port}"
    assert cause in ready.json["error"]["message"]
    own_redis.start()
    assert server.request("GET", "/readyz").status == 200
    assert server.request("POST", BASE + "/tasks", b'{"id": "t2"}').status == 200
    outage = [record.getMessage() for record in caplog.records if record.name == "bridge.redis"]
    assert len(outage) == 2, outage
    assert f"cannot serve: {cause}." in outage[0]
    assert "serves again, after" in outage[1] and f"and {len(CALLS) + 1} calls answered 503" in outage[1]
    assert [record for record in caplog.records if record.exc_info] == [], "no traceback for an outage"
