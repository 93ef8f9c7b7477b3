"""Hostile and faulty conditions against gunicorn on a real Redis: the bridge stays up.

Stress tests (``-m stress``), run by the default ``pytest`` like every other test.
Bounds are in seconds, several times what a quiet machine needs, so that a loaded CI
machine cannot make them fail; what they catch is the difference between a second and
a denial of service (30 s timeouts before the fixes they guard).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.process import call, serving_process
from tests.support.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.stress]

ROOT = Path(__file__).resolve().parent.parent
BASE = "/taskqueue/v1beta2/projects/s~stress/taskqueues/work"
HEAD_TIMEOUT = 3
#: A normal client's call must answer within this, whatever the hostile ones do.
PROBE_BOUND = 3.0
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def redis_for_stress(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("stress-redis")).start()
    yield server
    server.stop()


def _gunicorn(redis: RedisServer, folder: Path, *options: str) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "BRIDGE_BACKEND": f"{redis.url}?prefix=stress{port}"}
    command = [sys.executable, "-m", "bridge", "serve", "--port", str(port), "--head-timeout", str(HEAD_TIMEOUT)]
    with serving_process([*command, *options], cwd=ROOT, env=env, port=port, log=folder / "gunicorn.log"):
        yield port


@pytest.fixture(scope="module")
def gunicorn(redis_for_stress: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from _gunicorn(redis_for_stress, tmp_path_factory.mktemp("stress"), "--workers", "2", "--threads", "4")


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_and_trickling_connections_delay_neither_healthz_nor_the_api(gunicorn: int) -> None:
    idle = [socket.create_connection(("127.0.0.1", gunicorn)) for _ in range(128)]
    trickling = [socket.create_connection(("127.0.0.1", gunicorn)) for _ in range(128)]
    for sock in idle:
        sock.sendall(b"G")
    stop = threading.Event()

    def trickle() -> None:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100
        for byte in head:
            for sock in trickling:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    pass
            if stop.wait(1.0):
                return

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        worst = {"healthz": 0.0, "api": 0.0}
        deadline = time.monotonic() + HEAD_TIMEOUT + 3
        while time.monotonic() < deadline:
            for name, path in (("healthz", "/healthz"), ("api", BASE)):
                status, body, seconds = call(gunicorn, "GET", path, timeout=15)
                assert status == 200, (name, body)
                worst[name] = max(worst[name], seconds)
            time.sleep(0.2)
        assert worst["healthz"] < PROBE_BOUND and worst["api"] < PROBE_BOUND, worst
        # Past the head deadline (and the event loop's one-second tick) every one is closed.
        open_ones = [sock for sock in idle + trickling if not closed_by_server(sock)]
        assert open_ones == [], f"{len(open_ones)} of 256 connections without a whole head are still open"
    finally:
        stop.set()
        trickler.join()
        for sock in idle + trickling:
            sock.close()


def test_requests_whose_body_stops_arriving_are_400_and_free_their_threads(gunicorn: int) -> None:
    head = f"POST {BASE}/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    # Twice the threads there are: each holds one until its body read gives up.
    stalled = [socket.create_connection(("127.0.0.1", gunicorn), timeout=30) for _ in range(16)]
    try:
        for sock in stalled:
            sock.sendall(head.encode() + b'{"id": "st')  # then nothing
        # 30 s each: without the body timeout, no answer ever comes. Those that waited
        # for a thread as long as the first ones' body timeout are answered 503 unrun.
        answers = [sock.recv(65536)[:12] for sock in stalled]
        assert set(answers) <= {b"HTTP/1.1 400", b"HTTP/1.1 503"}, answers
        # At least one worker's four threads answered theirs (the kernel may give one worker most).
        assert answers.count(b"HTTP/1.1 400") >= 4, answers
        status, body, seconds = call(gunicorn, "GET", BASE, timeout=15)
        assert status == 200 and seconds < PROBE_BOUND, (status, body, seconds)
    finally:
        for sock in stalled:
            sock.close()


def test_clients_that_keep_their_socket_open_after_a_bad_request_delay_nobody(gunicorn: int) -> None:
    held = [socket.create_connection(("127.0.0.1", gunicorn), timeout=30) for _ in range(32)]
    try:
        for sock in held:
            sock.sendall(b"GARBAGE\r\n\r\n")  # answered 400 and closed; the client never closes
        for sock in held:
            assert sock.recv(65536).startswith(b"HTTP/1.1 400")
        status, _, seconds = call(gunicorn, "GET", "/healthz", timeout=60)
        assert status == 200 and seconds < PROBE_BOUND, seconds
    finally:
        for sock in held:
            sock.close()


RAW_ERRORS = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    (b"POST " + BASE.encode() + b"/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n", 501),
    (b"POST " + BASE.encode() + b"/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
]


@pytest.mark.parametrize(("raw", "status"), RAW_ERRORS, ids=["request-line", "414", "431", "501", "chunk-size"])
def test_what_gunicorn_cannot_parse_is_answered_in_googles_envelope(gunicorn: int, raw: bytes, status: int) -> None:
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=15) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and data.endswith(b"}"):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == str(status).encode(), data[:300]
    assert b"application/json" in head
    error = json.loads(body)["error"]
    assert error["code"] == status and error["errors"][0]["domain"] == "global"


def test_a_stalled_redis_delays_neither_liveness_nor_a_quick_503(gunicorn: int, redis_for_stress: RedisServer) -> None:
    assert call(gunicorn, "POST", BASE + "/tasks", b"{}")[0] == 200
    process = redis_for_stress.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)  # Redis accepts connections and answers nothing
    try:
        with ThreadPoolExecutor(12) as pool:
            # More calls than the two workers have threads: every thread waits on Redis.
            calls = [pool.submit(call, gunicorn, "POST", BASE + "/tasks", b"{}") for _ in range(12)]
            time.sleep(0.5)
            probes = [call(gunicorn, "GET", "/healthz", timeout=15) for _ in range(4)]
            answers = [future.result() for future in calls]
    finally:
        process.send_signal(signal.SIGCONT)
    assert [status for status, _, _ in probes] == [200] * 4
    assert max(seconds for _, _, seconds in probes) < PROBE_BOUND, probes
    assert {status for status, _, _ in answers} == {503}, answers
    # Three seconds of socket timeout, twice for the calls that queued behind the first.
    assert max(seconds for _, _, seconds in answers) < 15, [seconds for _, _, seconds in answers]
    assert call(gunicorn, "POST", BASE + "/tasks", b"{}")[0] == 200, "recovers once Redis answers"


def _worker_pid(master: int) -> int:
    [child] = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(child)


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.fixture
def one_worker(redis_for_stress: RedisServer, tmp_path: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    env = {**os.environ, "BRIDGE_BACKEND": f"{redis_for_stress.url}?prefix=big{port}"}
    command = [sys.executable, "-m", "bridge", "serve", "--port", str(port), "--workers", "1", "--threads", "2"]
    with serving_process(command, cwd=ROOT, env=env, port=port, log=tmp_path / "gunicorn.log") as process:
        yield port, process.pid


def test_a_lease_of_1000_one_mib_tasks_stays_under_32_mib_and_3x_its_size_in_memory(
    one_worker: tuple[int, int],
) -> None:
    port, master = one_worker
    payload = json.dumps("A" * (MIB // 3 * 4)).encode()  # 1 MiB decoded, less a byte
    for i in range(40):
        status, body, _ = call(port, "POST", BASE + "/tasks", b'{"id": "t%02d", "payloadBase64": %s}' % (i, payload))
        assert status == 200, body
    worker = _worker_pid(master)
    before = _kib(worker, "VmRSS")
    status, body, seconds = call(port, "POST", BASE + "/tasks/lease?numTasks=1000&leaseSecs=600")
    growth = _kib(worker, "VmHWM") - before
    assert status == 200
    leased = [task["id"] for task in json.loads(body)["items"]]
    size = len(body)
    print(f"lease: {len(leased)} tasks, {size / MIB:.1f} MiB in {seconds:.2f} s, peak growth {growth / 1024:.1f} MiB")
    assert size <= 32 * MIB and 20 <= len(leased) < 40
    assert growth * 1024 <= 3 * size, f"peak memory grew {growth / 1024:.0f} MiB for a {size / MIB:.0f} MiB response"
    status, body, _ = call(port, "POST", BASE + "/tasks/lease?numTasks=1000&leaseSecs=600")
    rest = json.loads(body)["items"]
    assert [task["id"] for task in rest] == [f"t{i:02d}" for i in range(len(leased), 40)]
    assert {task["retry_count"] for task in rest} == {1}, "the tasks that did not fit were never leased"


def test_a_healthz_that_trickles_a_body_cannot_hold_the_probe_thread(one_worker: tuple[int, int]) -> None:
    port, _ = one_worker
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    trickling = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(4)]
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for sock in trickling:
                try:
                    sock.send(b"x")
                except OSError:
                    pass

    for sock in trickling:
        sock.sendall(head)
    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(0.5)
        # Each of the four held the worker's one probe thread for the 5 s gunicorn
        # gives a body it drains: a probe behind them waited about 20 s.
        probes = [call(port, "GET", "/healthz", timeout=30) for _ in range(3)]
    finally:
        stop.set()
        trickler.join()
        for sock in trickling:
            sock.close()
    assert [status for status, _, _ in probes] == [200] * 3
    assert max(seconds for _, _, seconds in probes) < PROBE_BOUND, probes


def test_a_backlog_behind_a_stalled_redis_fails_fast(gunicorn: int, redis_for_stress: RedisServer) -> None:
    assert call(gunicorn, "GET", BASE)[0] == 200
    process = redis_for_stress.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(101) as pool:
            # 100 calls for the two workers' 8 threads: 13 rounds of the backend's 3 s.
            backlog = [pool.submit(call, gunicorn, "GET", BASE) for _ in range(100)]
            time.sleep(1)
            status, body, seconds = call(gunicorn, "GET", BASE)
            answers = [future.result() for future in backlog]
    finally:
        process.send_signal(signal.SIGCONT)
    # Answered once it has waited MAX_QUEUE_SECONDS (3) for a thread, at the event
    # loop's next turn (within a second), or after one backend timeout (3 s) if a
    # thread takes it first: before, about 39 s.
    assert status == 503 and seconds < 10, (status, body, seconds)
    error = json.loads(body)["error"]
    assert error["code"] == 503 and error["errors"][0]["reason"] == "backendError", error
    assert {status for status, _, _ in answers} == {503}
    assert max(seconds for _, _, seconds in answers) < 15, sorted(seconds for _, _, seconds in answers)[-5:]


def test_leases_whose_callers_left_while_they_waited_lease_nothing(
    one_worker: tuple[int, int], redis_for_stress: RedisServer
) -> None:
    port, _ = one_worker
    for i in range(20):
        assert call(port, "POST", BASE + "/tasks", b'{"id": "gone%02d"}' % i)[0] == 200
    process = redis_for_stress.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(20) as pool:
            # Each caller gives up after a second and closes its socket.
            gave_up = list(
                pool.map(
                    lambda _: call(port, "POST", BASE + "/tasks/lease?numTasks=1&leaseSecs=300", timeout=1), range(20)
                )
            )
        time.sleep(7)  # past the worker's queueing bound and the backend's timeout
    finally:
        process.send_signal(signal.SIGCONT)
    assert {status for status, _, _ in gave_up} == {0}
    status, body, _ = call(port, "GET", BASE + "/tasks")
    leased = [task["id"] for task in json.loads(body).get("items", []) if task["retry_count"] > 0]
    # Only the calls already at the backend when their callers left (one per thread)
    # can lease: before, all 20 did, for 300 s, to nobody.
    assert len(leased) <= 2, leased
