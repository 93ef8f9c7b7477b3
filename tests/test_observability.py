"""Probes, metrics and request logs, in process on every backend.

tests/test_container.py checks the same under gunicorn with several workers; these
check the details quickly. The metrics here are this process's own (no multiprocess
folder), so each test compares before and after.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.base import Queue
from backends.redis.memory import MemoryBackend
from bridge.access.queues import QueueRegistry
from bridge.gate.backend import observed
from bridge.ops import logs
from bridge.ops.logs import BatchingHandler, JsonFormatter
from bridge.ops.metrics import MAX_SAMPLED_QUEUES, BackendMeter, sampled_queues
from tests.support.api import PROJECT, QUEUE, b64, insert, lease
from tests.support.harness import Harness
from tests.support.http import BridgeServer

BASE = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(bridge: BridgeServer) -> Samples:
    reply = bridge.request("GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_and_readyz_answer_200_without_credentials(bridge: BridgeServer) -> None:
    for path in ("/healthz", "/readyz"):
        reply = bridge.request("GET", path)
        assert reply.status == 200 and reply.json == {"status": "ok"}


def test_every_response_carries_the_callers_request_id_or_a_new_one(bridge: BridgeServer) -> None:
    assert bridge.request("GET", "/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    made = bridge.request("GET", BASE).headers["X-Request-Id"]
    assert len(made) == 32 and made != bridge.request("GET", BASE).headers["X-Request-Id"]
    # An id that is not a plain token is replaced, so that it cannot forge log text.
    replaced = bridge.request("GET", "/nowhere", headers={"X-Request-Id": 'x" injected'}).headers["X-Request-Id"]
    assert len(replaced) == 32 and "injected" not in replaced


@pytest.mark.in_process  # reads the log lines of the app in this process
def test_each_request_logs_one_json_line_without_payload_or_credentials(
    bridge: BridgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps({"id": "logged", "payloadBase64": b64(b"top secret payload")})
    # Under token auth the header must be the real token; it must not be logged either way.
    token = bridge.token or "token-hdr"
    with caplog.at_level(logging.INFO, logger="bridge.request"):
        reply = bridge.request(
            "POST",
            BASE + "/tasks?oauth_token=token-in-query&key=api-key",
            body,
            headers={"Content-Type": "application/json", "X-Request-Id": "req-1", "Authorization": f"Bearer {token}"},
        )
        bridge.request("GET", "/healthz")  # probes log at DEBUG only
    assert reply.status == 200
    (record,) = [r for r in caplog.records if r.name == "bridge.request"]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request" and line["level"] == "INFO"
    assert line["request_id"] == "req-1"
    assert line["method"] == "taskqueue.tasks.insert"
    assert (line["project"], line["queue"], line["status"]) == (PROJECT, QUEUE, 200)
    assert line["http_method"] == "POST" and line["path"] == BASE + "/tasks"
    assert isinstance(line["duration_ms"], float) and isinstance(line["pid"], int)
    text = JsonFormatter().format(record)
    for secret in ("token-in-query", "api-key", token, b64(b"top secret payload")):
        assert secret not in text


@pytest.mark.in_process  # reads the log lines of the app in this process
def test_request_lines_say_how_many_tasks_a_lease_handed_out_and_why_a_call_failed(
    bridge: BridgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("one", "two"):
        bridge.request("POST", BASE + "/tasks", {"id": name, "payloadBase64": b64(b"x")})
    with caplog.at_level(logging.INFO, logger="bridge.request"):
        bridge.request("POST", BASE + "/tasks/lease?numTasks=5&leaseSecs=60")
        bridge.request("POST", BASE + "/tasks/lease?numTasks=5&leaseSecs=60")
        bridge.request("GET", BASE + "/tasks/missing")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "bridge.request"]
    assert [(line["method"], line.get("tasks"), line.get("reason")) for line in lines] == [
        ("taskqueue.tasks.lease", 2, None),
        ("taskqueue.tasks.lease", 0, None),
        ("taskqueue.tasks.get", None, "notFound"),
    ]
    assert lines[2]["queue"] == QUEUE and lines[2]["status"] == 404


def test_metrics_count_requests_tasks_and_lease_conflicts(bridge: BridgeServer, api: Any) -> None:
    before = scrape(bridge)
    for n in range(3):
        insert(api, id=f"m{n}")
    leased = lease(api, num=2)
    api.tasks().delete(project=PROJECT, taskqueue=QUEUE, task=leased[0]["id"]).execute()
    conflict = bridge.request("POST", f"{BASE}/tasks/{leased[1]['id']}?newLeaseSeconds=5", '{"leaseTimestamp": "7"}')
    assert conflict.status == 409
    bridge.request("GET", "/no/such/route")
    after = scrape(bridge)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("bridge_http_requests_total", method="taskqueue.tasks.insert", status="200") == 3
    assert moved("bridge_http_requests_total", method="taskqueue.tasks.update", status="409") == 1
    assert moved("bridge_http_requests_total", method="unmatched", status="404") == 1
    assert moved("bridge_http_request_duration_seconds_count", method="taskqueue.tasks.lease") == 1
    assert moved("bridge_tasks_inserted_total") == 3
    assert moved("bridge_tasks_leased_total") == 2
    assert moved("bridge_tasks_deleted_total") == 1
    assert moved("bridge_lease_conflicts_total") == 1
    assert moved("bridge_backend_errors_total", operation="insert", kind="unavailable") == 0


def test_queue_depth_and_oldest_task_age_are_sampled_at_scrape_time(
    bridge: BridgeServer, api: Any, harness: Harness
) -> None:
    harness.advance(-30)  # the task becomes available 30 s before the scrape
    insert(api, id="old")
    harness.advance(30)
    insert(api, id="new")
    samples = scrape(bridge)
    labels = {"project": "demo-app", "queue": QUEUE}
    assert value(samples, "bridge_queue_tasks", **labels) == 2
    assert 29 <= value(samples, "bridge_queue_oldest_task_age_seconds", **labels) < 60
    assert value(samples, "bridge_backend_up") == 1
    lease(api, num=2)
    assert value(scrape(bridge), "bridge_queue_oldest_task_age_seconds", **labels) == 0, "leased tasks do not wait"


def test_queue_yaml_queues_are_sampled_for_each_project_served(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Any]
) -> None:
    path = queue_file("queue:\n- name: work\n  mode: pull\n- name: idle\n  mode: pull\n- name: push\n")
    bridge = make_bridge(queues=path)
    insert(bridge.api(), id="one")
    samples = scrape(bridge)
    assert value(samples, "bridge_queue_tasks", project="demo-app", queue="work") == 1
    assert ("bridge_queue_tasks", (("project", "demo-app"), ("queue", "idle"))) in samples
    assert ("bridge_queue_tasks", (("project", "demo-app"), ("queue", "push"))) not in samples


def test_the_queues_sampled_are_bounded_and_the_latest_served_win() -> None:
    meter = BackendMeter()
    metered = observed(MemoryBackend.from_url("memory://"), meter)
    for n in range(MAX_SAMPLED_QUEUES + 20):
        metered.queue_info(Queue("app", f"q{n}"), with_stats=False)
    sampled = sampled_queues(meter, QueueRegistry())
    assert len(sampled) == MAX_SAMPLED_QUEUES
    assert sampled[0].name == f"q{MAX_SAMPLED_QUEUES + 19}" and Queue("app", "q0") not in sampled


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("bridge.request", level, __file__, 0, message, (), None)


def _batching(stream: io.StringIO) -> BatchingHandler:
    handler = BatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def test_request_lines_are_written_in_batches_within_a_tenth_of_a_second() -> None:
    stream = io.StringIO()
    handler = _batching(stream)
    for n in range(3):
        handler.handle(_record(logging.INFO, f"line {n}"))
    deadline = time.monotonic() + 10
    while stream.getvalue() != "line 0\nline 1\nline 2\n":
        assert time.monotonic() < deadline, f"written so far: {stream.getvalue()!r}"
        time.sleep(logs.FLUSH_SECONDS / 4)


def test_a_warning_is_written_at_once_after_the_lines_that_wait() -> None:
    stream = io.StringIO()
    handler = _batching(stream)
    handler.handle(_record(logging.INFO, "request"))
    handler.handle(_record(logging.WARNING, "trouble"))
    assert stream.getvalue() == "request\ntrouble\n"


def test_lines_are_written_at_once_when_a_batch_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "FLUSH_SECONDS", 3600.0)
    monkeypatch.setattr(logs, "FLUSH_BYTES", 20)
    stream = io.StringIO()
    handler = _batching(stream)
    for n in range(3):
        handler.handle(_record(logging.INFO, f"line {n}"))  # 7 bytes each
    assert stream.getvalue() == "line 0\nline 1\nline 2\n"
    handler.handle(_record(logging.INFO, "line 3"))
    handler.flush()  # what logging.shutdown does at exit
    assert stream.getvalue().endswith("line 2\nline 3\n")


def test_a_forked_process_starts_with_no_lines_of_its_parent(tmp_path: Any) -> None:
    path = tmp_path / "log"
    with path.open("w") as stream:
        handler = BatchingHandler(stream)
        handler.setFormatter(logging.Formatter("%(process)d %(message)s"))
        handler.handle(_record(logging.INFO, "before the fork"))
        child = os.fork()
        if child == 0:  # pragma: no cover - the child
            handler.handle(_record(logging.INFO, "in the child"))
            handler.flush()
            os._exit(0)
        assert os.waitpid(child, 0)[1] == 0
        handler.flush()
    lines = path.read_text().splitlines()
    assert lines == [f"{os.getpid()} before the fork", f"{child} in the child"]
