"""A server process the tests start: its output in a log file, ready once its port answers;
and one HTTP call to it."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT = 30


@contextmanager
def serving_process(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    port: int,
    log: Path,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; fail the test with the log's tail if it never listens.
    ``preexec_fn`` runs in the child before it executes ``command`` (to set its limits).

    gunicorn's master binds the port before its workers boot; a request sent then waits
    for a worker, so an open port is ready enough.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=preexec_fn
        )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"{command[0]} did not start: {log.read_text()[-3000:]}")
            time.sleep(0.1)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def call(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, bytes, float]:
    """One request on a fresh connection: status, body and seconds taken (status 0: no answer)."""
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - start
    except OSError:
        return 0, b"", time.monotonic() - start
    finally:
        connection.close()
