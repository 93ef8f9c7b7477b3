"""One bridge per gRPC port: the workers of one bridge share it, a second bridge refuses to start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.cloud.tasks_v2beta2.types import cloudtasks

from bridge.server.serving import hold_grpc_port, startup_line
from bridge.settings import Settings
from tests.support.process import call, serving_process
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
OPTION = "--grpc-port (BRIDGE_GRPC_PORT)"


def test_a_held_grpc_port_cannot_be_held_twice_even_before_anyone_listens() -> None:
    port = free_port()
    first = hold_grpc_port("127.0.0.1", port)
    try:
        with pytest.raises(RuntimeError) as refused:
            hold_grpc_port("127.0.0.1", port)
        assert str(refused.value) == (
            f"gRPC port {port} on 127.0.0.1 is served by another Task Queue Bridge: choose another with {OPTION}"
        )
    finally:
        assert first is not None
        first.close()
    again = hold_grpc_port("127.0.0.1", port)
    assert again is not None
    again.close()


def test_a_port_another_program_listens_on_with_so_reuseport_is_refused() -> None:
    port = free_port()
    with socket.socket() as other:
        # As a gRPC server binds (SO_REUSEPORT is gRPC's default on Linux).
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(RuntimeError) as refused:
            hold_grpc_port("127.0.0.1", port)
    assert str(refused.value) == (
        f"gRPC: port {port} on 127.0.0.1 is in use by another program: choose another with {OPTION}"
    )


def test_the_startup_line_says_where_grpc_is_served() -> None:
    line = startup_line(Settings(host="0.0.0.0", port=8090, grpc_port=8123), "answering")
    assert "Cloud Tasks v2beta2 gRPC 127.0.0.1:8123;" in line
    assert "gRPC" not in startup_line(Settings(port=8090), "answering")


def _create_task(grpc_port: int, name: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        create = channel.unary_unary(
            "/google.cloud.tasks.v2beta2.CloudTasks/CreateTask",
            request_serializer=cloudtasks.CreateTaskRequest.serialize,
            response_deserializer=lambda data: data,
        )
        task = {"name": f"projects/p/locations/l/queues/q/tasks/{name}", "pull_message": {"payload": b"x"}}
        create(cloudtasks.CreateTaskRequest(parent="projects/p/locations/l/queues/q", task=task), timeout=30)


@pytest.mark.slow
def test_a_second_bridge_on_the_same_grpc_port_refuses_to_start(tmp_path: Path) -> None:
    grpc_port = free_port()
    env = {**os.environ, "BRIDGE_BACKEND": "memory://", "BRIDGE_GRPC_PORT": str(grpc_port)}
    first_port = free_port()
    command = [sys.executable, "-m", "bridge", "serve", "--port"]
    with serving_process([*command, str(first_port)], cwd=ROOT, env=env, port=first_port, log=tmp_path / "first.log"):
        deadline = time.monotonic() + 30
        while "gRPC front listening" not in (tmp_path / "first.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.1)
        # Old main started this one too, and the kernel gave it about half of the
        # first one's gRPC connections.
        second = subprocess.run(
            [*command, str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1, second.stderr[-2000:]
        assert f"gRPC port {grpc_port} on 127.0.0.1" in second.stderr and OPTION in second.stderr
        # Every gRPC connection still reaches the first bridge.
        for number in range(10):
            _create_task(grpc_port, f"t{number}")
        for number in range(10):
            path = f"/taskqueue/v1beta2/projects/p/taskqueues/q/tasks/t{number}"
            assert call(first_port, "GET", path)[0] == 200
