"""The gate under gunicorn with two workers: what only the production server shows.

gunicorn hands a chunked body and a raw query string to the app as they came (the
development server used elsewhere decodes both first), and each worker is a process of
its own, which must take the console sessions the other signed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bridge.access.auth import hash_token
from tests.support.process import serving_process
from tests.support.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture(scope="module")
def served(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    folder = tmp_path_factory.mktemp("gate-served")
    redis = RedisServer(redis_binary, folder).start()
    tokens = folder / "tokens.txt"
    tokens.write_text(f"{hash_token(ADMIN_TOKEN)} ops@example.com\n")
    port = free_port()
    env = {
        **os.environ,
        "BRIDGE_BACKEND": f"{redis.url}?prefix=gate{port}",
        "BRIDGE_AUTH": "token",
        "BRIDGE_TOKENS_FILE": str(tokens),
        "BRIDGE_ADMINS": "ops@example.com",
    }
    command = [sys.executable, "-m", "bridge", "serve", "--port", str(port), "--workers", "2", "--threads", "2"]
    log = folder / "gunicorn.log"
    try:
        with serving_process(command, cwd=ROOT, env=env, port=port, log=log):
            yield port, log
    finally:
        redis.stop()


def _raw(port: int, head: str, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _head(method: str, target: str, *lines: str) -> str:
    return "\r\n".join([f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *lines, "", ""])


QUEUE = "/v2beta2/projects/app/locations/l/queues/q"


def test_a_v2beta2_chunked_body_with_a_chunk_size_that_is_not_hex_is_a_400(served: tuple[int, Path]) -> None:
    port, _ = served
    auth = f"Authorization: Bearer {ADMIN_TOKEN}"
    head = _head("POST", f"{QUEUE}/tasks", auth, "Content-Type: application/json", "Transfer-Encoding: chunked")
    answer = _raw(port, head, b"zz\r\n{}\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b'"INVALID_ARGUMENT"' in answer


def test_both_workers_take_the_console_session_either_signed(served: tuple[int, Path]) -> None:
    port, log = served
    form = f"token={ADMIN_TOKEN}&next=/console/".encode()
    kind = "Content-Type: application/x-www-form-urlencoded"
    signed = _raw(port, _head("POST", "/console/sign-in", kind, f"Content-Length: {len(form)}"), form)
    assert signed.startswith(b"HTTP/1.1 302 "), signed[:300]
    cookie = next(
        line.split(b":", 1)[1].split(b";")[0].strip().decode()
        for line in signed.split(b"\r\n")
        if line.lower().startswith(b"set-cookie:")
    )
    # The kernel hands connections to whichever worker accepts first, and on a busy
    # machine one may take many in a row: ask, in rounds of concurrent requests, until
    # the log shows both workers answering (every answer must be a 200 all along).
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(pids) < 2 and time.monotonic() < deadline:
            heads = [_head("GET", f"/console/api/queues?n={n}", f"Cookie: {cookie}") for n in range(16)]
            statuses = [reply[:12] for reply in pool.map(lambda head: _raw(port, head), heads)]
            assert statuses == [b"HTTP/1.1 200"] * 16
            time.sleep(0.3)  # request lines are written within a tenth of a second
            lines = [json.loads(text) for text in log.read_text().splitlines() if text.startswith("{")]
            pids = {
                line["pid"] for line in lines if line.get("path") == "/console/api/queues" and line["status"] == 200
            }
    assert len(pids) == 2, "one worker answered every request: the test shows nothing"
