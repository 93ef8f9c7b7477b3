"""Request bodies over the limit: refused with 413 without being read whole, however they are framed."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from bridge.access.auth import hash_token
from tests.support.api import PROJECT, ids, lease, listed
from tests.support.harness import Variant
from tests.support.http import BridgeServer, Reply
from tests.support.process import serving_process
from tests.support.redis_server import free_port

pytestmark = pytest.mark.memory

LIMIT = 4096
HUGE = 10_000_000_000
TASKS = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/render/tasks"
ROOT = Path(__file__).resolve().parent.parent
PRODUCER, CONSUMER = "frontend@example.com", "worker@example.com"
TOKENS = {PRODUCER: "producer-token-0123456789abcdef", CONSUMER: "consumer-token-0123456789abcdef"}
QUEUE_YAML = f"queue:\n- name: render\n  mode: pull\n  acl:\n  - user_email: {CONSUMER}\n  - writer_email: {PRODUCER}\n"


@pytest.fixture
def variant() -> Variant:
    """The limit is the front's, checked before the backend is reached: one backend is enough."""
    return Variant("memory")


def exchange(port: int, head: str, parts: Iterable[bytes], headers: dict[str, str] | None = None) -> Reply:
    """Send a request head and body parts, stop sending (without closing) and read the answer.

    The client never sends the rest of what it announced, so an answer proves that the
    server did not wait to read the body whole.
    """
    lines = [head, "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for part in parts:
                sock.sendall(part)
        except OSError:
            pass  # the server may stop reading once it has answered
        return _read_reply(sock)


def _read_reply(sock: socket.socket) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    length = int(headers.get("Content-Length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Reply(int(status_line.split()[1]), headers, body[:length])


def chunked(data: bytes, size: int = 1000, *, finish: bool = True) -> Iterator[bytes]:
    """``data`` in the chunked transfer coding; without ``finish`` the stream never ends."""
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    if finish:
        yield b"0\r\n\r\n"


def task_body(size: int) -> bytes:
    """A valid insert body of exactly ``size`` bytes (padded with spaces)."""
    body = b'{"id": "big", "payloadBase64": "' + b"A" * 8 + b'"}'
    return body + b" " * (size - len(body))


@pytest.fixture
def server(make_bridge: Callable[..., BridgeServer], tmp_path: Path) -> BridgeServer:
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)
    return make_bridge(max_body_bytes=LIMIT, queues=queues)


def test_a_content_length_over_the_limit_is_413_before_the_body_is_read(server: BridgeServer) -> None:
    reply = exchange(server.port, f"POST {TASKS} HTTP/1.1", [b"A" * 65536], {"Content-Length": str(HUGE)})
    assert reply.status == 413
    assert reply.json["error"]["errors"][0]["reason"] == "requestEntityTooLarge"
    assert listed(server.api(), queue="render") == []


def test_a_chunked_body_over_the_limit_is_413_without_waiting_for_its_end(server: BridgeServer) -> None:
    parts = chunked(b"A" * (LIMIT * 3), finish=False)
    reply = exchange(server.port, f"POST {TASKS} HTTP/1.1", parts, {"Transfer-Encoding": "chunked"})
    assert reply.status == 413
    assert reply.json["error"]["errors"][0]["reason"] == "requestEntityTooLarge"
    assert listed(server.api(), queue="render") == []


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1])
def test_a_chunked_body_is_read_up_to_the_limit_and_not_one_byte_more(server: BridgeServer, size: int) -> None:
    parts = chunked(task_body(size))
    reply = exchange(server.port, f"POST {TASKS} HTTP/1.1", parts, {"Transfer-Encoding": "chunked"})
    if size <= LIMIT:
        assert reply.status == 200, reply.body
        assert ids(lease(server.api(), queue="render")) == ["big"]
    else:
        assert reply.status == 413
        assert listed(server.api(), queue="render") == []


@pytest.fixture
def secured(make_bridge: Callable[..., BridgeServer], tmp_path: Path) -> BridgeServer:
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(f"{hash_token(token)} {email}\n" for email, token in TOKENS.items()))
    return make_bridge(max_body_bytes=LIMIT, queues=queues, auth="token", tokens_file=tokens)


@pytest.mark.parametrize(
    "who, status",
    [(None, 401), (CONSUMER, 403), (PRODUCER, 413)],
    ids=["stranger-401", "consumer-403", "producer-413"],
)
def test_with_auth_on_an_oversized_body_is_refused_unread_whoever_sends_it(
    secured: BridgeServer, who: str | None, status: int
) -> None:
    headers = {"Content-Length": str(HUGE)}
    if who:
        headers["Authorization"] = f"Bearer {TOKENS[who]}"
    reply = exchange(secured.port, f"POST {TASKS} HTTP/1.1", [b"A" * 65536], headers)
    assert reply.status == status
    assert listed(secured.api(TOKENS[CONSUMER]), queue="render") == []


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[int]:
    """``python -m bridge serve`` with token auth, set up from the environment as in staging."""
    port = free_port()
    (tmp_path / "queue.yaml").write_text(QUEUE_YAML)
    (tmp_path / "tokens.txt").write_text("".join(f"{hash_token(t)} {email}\n" for email, t in TOKENS.items()))
    env = {
        **os.environ,
        "BRIDGE_PORT": str(port),
        "BRIDGE_QUEUES": str(tmp_path / "queue.yaml"),
        "BRIDGE_AUTH": "token",
        "BRIDGE_TOKENS_FILE": str(tmp_path / "tokens.txt"),
        "BRIDGE_MAX_BODY_BYTES": str(LIMIT),
    }
    command = [sys.executable, "-m", "bridge", "serve", "--threads", "2"]
    with serving_process(command, cwd=ROOT, env=env, port=port, log=tmp_path / "gunicorn.log"):
        yield port


@pytest.mark.slow
def test_under_gunicorn_strangers_are_401_and_big_bodies_413_unread(gunicorn: int) -> None:
    producer = {"Authorization": f"Bearer {TOKENS[PRODUCER]}"}
    post = f"POST {TASKS} HTTP/1.1"
    assert exchange(gunicorn, post, [b'{"id": "t1"}'], {"Content-Length": "12"}).status == 401
    assert exchange(gunicorn, post, [b'{"id": "t1"}'], {"Content-Length": "12", **producer}).status == 200
    huge = exchange(gunicorn, post, [b"A" * 65536], {"Content-Length": str(HUGE), **producer})
    assert huge.status == 413
    endless = chunked(b"A" * (LIMIT * 3), finish=False)
    assert exchange(gunicorn, post, endless, {"Transfer-Encoding": "chunked", **producer}).status == 413
    fits = chunked(task_body(LIMIT))
    assert exchange(gunicorn, post, fits, {"Transfer-Encoding": "chunked", **producer}).status == 200
    discovery = exchange(gunicorn, "GET /api/taskqueue/v1beta2 HTTP/1.1", [], {"Connection": "close"})
    assert discovery.status == 200
    consumer = {"Authorization": f"Bearer {TOKENS[CONSUMER]}", "Content-Length": "0"}
    leased = exchange(gunicorn, f"POST {TASKS}/lease?numTasks=10&leaseSecs=60 HTTP/1.1", [], consumer)
    assert sorted(task["id"] for task in leased.json["items"]) == ["big", "t1"]


def test_a_tunnelled_get_body_over_the_limit_is_413(server: BridgeServer) -> None:
    body = "getStats=true&pad=" + "x" * (LIMIT * 3)
    headers = {"X-HTTP-Method-Override": "GET", "Content-Type": "application/x-www-form-urlencoded"}
    reply = server.request("POST", TASKS.removesuffix("/tasks"), body, headers)
    assert reply.status == 413
    assert reply.json["error"]["errors"][0]["reason"] == "requestEntityTooLarge"


def test_a_tunnelled_get_body_past_64_kib_is_read_whole(bridge: BridgeServer) -> None:
    body = "pad=" + "x" * 70_000 + "&getStats=true"
    headers = {"X-HTTP-Method-Override": "GET", "Content-Type": "application/x-www-form-urlencoded"}
    reply = bridge.request("POST", f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/render", body, headers)
    assert reply.status == 200, reply.body
    assert "stats" in reply.json, "the parameter after 64 KiB was read"


MALFORMED_CHUNKS = {
    "size-not-hex": [b"zz\r\n{}\r\n0\r\n\r\n"],
    "chunk-without-terminator": [b"2\r\n{}{}\r\n0\r\n\r\n"],
}


@pytest.mark.parametrize("parts", MALFORMED_CHUNKS.values(), ids=MALFORMED_CHUNKS.keys())
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_malformed_chunked_body_is_400(server: BridgeServer, parts: list[bytes], method: str) -> None:
    path = TASKS if method == "POST" else f"{TASKS}/t1?newLeaseSeconds=5"
    reply = exchange(server.port, f"{method} {path} HTTP/1.1", parts, {"Transfer-Encoding": "chunked"})
    assert reply.status == 400, reply.body
    assert reply.json["error"]["errors"][0]["reason"] == "invalid"
