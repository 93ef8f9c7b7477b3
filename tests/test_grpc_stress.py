"""Hostile clients on the gRPC port of a running bridge (gunicorn, memory://): it stays up.

Stress tests, as in test_stress.py: bounds in seconds, several times what a quiet machine
needs, catching the difference between a bounded wait and a denial of service.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.cloud.tasks_v2beta2.types import cloudtasks

from bench.raw_grpc import open_calls_without_requests, open_preface_only
from tests.support.process import call, serving_process
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.memory, pytest.mark.slow, pytest.mark.stress]

ROOT = Path(__file__).resolve().parent.parent
HEAD_TIMEOUT = 2
SERVICE = "/google.cloud.tasks.v2beta2.CloudTasks"
QUEUE = "projects/stress/locations/here/queues/work"
V1 = "/taskqueue/v1beta2/projects/stress/taskqueues/work"
#: Open files of the server in the descriptor test: few, so that a few hundred connections exhaust them.
FILES = 256


class Bridge:
    def __init__(self, process: int, port: int, grpc_port: int) -> None:
        self.pid, self.port, self.grpc_port = process, port, grpc_port

    def worker(self) -> int:
        [child] = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return int(child)

    def call(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, bytes, float]:
        return call(self.port, method, path, body, timeout)

    def get_queue(self, timeout: float = 30) -> tuple[str, float]:
        """A GetQueue over a new channel: the status code's name and the seconds it took."""
        start = time.monotonic()
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            get = channel.unary_unary(
                f"{SERVICE}/GetQueue",
                request_serializer=cloudtasks.GetQueueRequest.serialize,
                response_deserializer=lambda data: data,
            )
            try:
                get(cloudtasks.GetQueueRequest(name=QUEUE), timeout=timeout)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
        return code, time.monotonic() - start


def _bridge(folder: Path, files: int | None = None, worker_class: str = "gthread") -> Iterator[Bridge]:
    port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "bridge", "serve", "--port", str(port), "--grpc-port", str(grpc_port)]
    command += ["--head-timeout", str(HEAD_TIMEOUT), "--threads", "4", "--worker-class", worker_class]
    env = {**os.environ, "BRIDGE_BACKEND": "memory://", "BRIDGE_LOG_LEVEL": "WARNING"}

    def few_files() -> None:
        if files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    with serving_process(
        command, cwd=ROOT, env=env, port=port, log=folder / "bridge.log", preexec_fn=few_files
    ) as process:
        bridge = Bridge(process.pid, port, grpc_port)
        deadline = time.monotonic() + 30
        while bridge.get_queue(timeout=5)[0] not in ("OK", "NOT_FOUND"):
            assert time.monotonic() < deadline, "the gRPC front never answered"
            time.sleep(0.2)
        yield bridge


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    yield from _bridge(tmp_path_factory.mktemp("grpc-stress"))


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        while data := sock.recv(65536):  # a GOAWAY may come first
            del data
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_connections_that_send_nothing_or_no_call_are_closed_after_the_head_timeout(bridge: Bridge) -> None:
    silent = [socket.create_connection(("127.0.0.1", bridge.grpc_port)) for _ in range(50)]
    preface_only = [open_preface_only(bridge.grpc_port) for _ in range(50)]
    try:
        # gRPC's own default closed a silent connection after 120 s and an idle one never.
        time.sleep(HEAD_TIMEOUT + 3)
        still_open = [sock for sock in silent + preface_only if not closed_by_server(sock)]
        assert still_open == [], f"{len(still_open)} of 100 connections are still open"
    finally:
        for sock in silent + preface_only:
            sock.close()


def test_calls_whose_request_never_arrives_hold_no_thread_past_the_head_timeout(bridge: Bridge) -> None:
    # Five times the front's 8 threads, on one connection: each took a thread until its
    # request arrived, which it never does, so every other call waited for ever. Counted
    # from when a thread takes it, a call's wait would add up to five head timeouts.
    held = open_calls_without_requests(bridge.grpc_port, f"{SERVICE}/GetQueue", 40)
    try:
        time.sleep(0.5)
        code, seconds = bridge.get_queue(timeout=30)
    finally:
        held.close()
    assert code in ("OK", "NOT_FOUND") and seconds < HEAD_TIMEOUT + 5, (code, seconds)


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
def test_running_out_of_descriptors_kills_no_worker_and_loses_no_task(tmp_path: Path, worker_class: str) -> None:
    for bridge in _bridge(tmp_path, files=FILES, worker_class=worker_class):
        assert bridge.call("POST", V1 + "/tasks", b'{"id": "kept"}')[0] == 200
        worker = bridge.worker()
        # More silent connections than the worker may open files, on both ports: the
        # accepts fail with EMFILE until the head timeout closes the ones it took.
        flood = [socket.create_connection(("127.0.0.1", bridge.grpc_port)) for _ in range(FILES + 100)]
        deadline = time.monotonic() + 10
        while len(os.listdir(f"/proc/{worker}/fd")) < FILES and time.monotonic() < deadline:
            time.sleep(0.05)
        if worker_class == "gthread":  # a sync worker is held by one silent connection anyway
            flood += [socket.create_connection(("127.0.0.1", bridge.port)) for _ in range(100)]
        try:
            status, _, seconds = bridge.call("GET", "/healthz", timeout=60)
        finally:
            for sock in flood:
                sock.close()
        assert status == 200 and seconds < 6 * HEAD_TIMEOUT + 10, (status, seconds)
        assert bridge.worker() == worker, "the worker died and was replaced"
        status, body, _ = bridge.call("GET", V1 + "/tasks/kept")
        assert status == 200 and json.loads(body)["id"] == "kept"
        assert bridge.get_queue()[0] in ("OK", "NOT_FOUND")
        log = (tmp_path / "bridge.log").read_text()
        assert "accept failed (Too many open files)" in log


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def test_memory_comes_back_after_a_flood_of_calls(bridge: Bridge) -> None:
    worker = bridge.worker()
    before = _rss_mib(worker)
    # 10 KB requests the front refuses (no queue takes them, so nothing is kept), 5,000
    # at once over 10 connections: old main kept 45 MiB of the flood for good.
    request = cloudtasks.CreateTaskRequest(parent=QUEUE + "!", task={"pull_message": {"payload": b"x" * 10_000}})
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{bridge.grpc_port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(10)
    ]
    try:
        creates = [
            channel.unary_unary(f"{SERVICE}/CreateTask", request_serializer=cloudtasks.CreateTaskRequest.serialize)
            for channel in channels
        ]
        calls = [creates[number % 10].future(request, timeout=60) for number in range(5000)]
        codes = {call.code().name for call in calls}
    finally:
        for channel in channels:
            channel.close()
    assert "INVALID_ARGUMENT" in codes, codes
    peak = _rss_mib(worker)
    deadline = time.monotonic() + 3 * HEAD_TIMEOUT + 15
    while _rss_mib(worker) > before + 20 and time.monotonic() < deadline:
        time.sleep(0.5)
    after = _rss_mib(worker)
    assert after <= before + 20, f"RSS {before:.0f} MiB before the flood, {peak:.0f} at its end, {after:.0f} after"
