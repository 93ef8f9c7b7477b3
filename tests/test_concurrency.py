"""Many workers leasing at once through gunicorn: no task handed out twice, none lost."""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import serving_process
from tests.support.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
TASKS = 2000
LEASERS = 8
BASE = "/taskqueue/v1beta2/projects/s~demo-app/taskqueues/drain"


class Client:
    """One keep-alive connection, like a worker's."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def gunicorn_bridge(redis_server: RedisServer, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "BRIDGE_BACKEND": redis_server.url + "?prefix=drain" + str(port)}
    command = [sys.executable, "-m", "bridge", "serve", "--port", str(port), "--workers", "2", "--threads", "8"]
    with serving_process(command, cwd=ROOT, env=env, port=port, log=tmp_path / "gunicorn.log"):
        yield port


def test_eight_leasers_drain_2000_tasks_through_two_gunicorn_workers(gunicorn_bridge: int) -> None:
    producer = Client(gunicorn_bridge)
    for i in range(TASKS):
        status, _ = producer.call("POST", BASE + "/tasks", json.dumps({"id": f"t{i:04d}"}).encode())
        assert status == 200
    producer.close()
    handed_out: Counter[str] = Counter()
    lock = threading.Lock()
    failures: list[str] = []

    def leaser() -> None:
        client = Client(gunicorn_bridge)
        try:
            drain(client)
        finally:
            client.close()

    def drain(client: Client) -> None:
        while True:
            status, body = client.call("POST", BASE + "/tasks/lease?numTasks=10&leaseSecs=600")
            if status != 200:
                failures.append(body.decode())
                return
            items = json.loads(body).get("items", [])
            if not items:
                return
            with lock:
                handed_out.update(task["id"] for task in items)
            for task in items:
                status, body = client.call("DELETE", f"{BASE}/tasks/{task['id']}")
                if status != 204:
                    failures.append(body.decode())

    threads = [threading.Thread(target=leaser) for _ in range(LEASERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    twice = [name for name, count in handed_out.items() if count > 1]
    assert twice == [], f"{len(twice)} tasks handed out twice"
    assert set(handed_out) == {f"t{i:04d}" for i in range(TASKS)}, "tasks lost"
    checker = Client(gunicorn_bridge)
    status, body = checker.call("GET", BASE + "?getStats=true")
    checker.close()
    assert json.loads(body)["stats"]["totalTasks"] == 0
