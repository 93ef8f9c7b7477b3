"""``python -m bridge compat``: bridges that agree, servers that deviate, the ledger, cleanup."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from backends.redis.backend import RedisBackend
from bridge import create_app
from bridge.access.auth import hash_token
from bridge.cli import main
from bridge.settings import Settings
from bridge.taskqueue.discovery import Discovery
from bridge_tools.compat.runner import run
from bridge_tools.compat.scenarios import SCENARIOS, Scenario
from bridge_tools.compat.session import LeasePacer, Session
from bridge_tools.options import TOKEN_ENV
from tests.support.harness import Harness, memory_harness, redis_harness
from tests.support.http import BridgeServer, serving
from tests.support.redis_server import RedisServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Change = Callable[[str, int, Any], tuple[int, Any]]


class Deviating:
    """WSGI middleware that rewrites the bridge's API answers the way another server might."""

    def __init__(self, app: WSGIApplication, change: Change) -> None:
        self.app = app
        self.change = change

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        status = int(seen["status"].split()[0])
        headers = [(k, v) for k, v in seen["headers"] if k.lower() != "content-length"]
        if environ["PATH_INFO"].startswith("/taskqueue/") and body:
            status, document = self.change(environ["PATH_INFO"], status, json.loads(body))
            body = json.dumps(document).encode()
        start_response(f"{status} X", [*headers, ("Content-Length", str(len(body)))])
        yield body


def numbers_for_int64(path: str, status: int, document: Any) -> tuple[int, Any]:
    """Timestamps and stats counts as JSON numbers, as a careless server would send them."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: int(item) if key.endswith(("Timestamp", "oldestTask", "LastMinute", "LastHour")) else walk(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return status, walk(document)


def plural_lease_kind(path: str, status: int, document: Any) -> tuple[int, Any]:
    """The lease answer with the list's kind, "taskqueues#tasks", a common slip."""
    if path.endswith("/tasks/lease"):
        document["kind"] = "taskqueues#tasks"
    return status, document


def duplicate_as_bad_request(path: str, status: int, document: Any) -> tuple[int, Any]:
    if status == 409 and document["error"]["errors"][0]["reason"] == "duplicate":
        document["error"]["code"] = 400
        return 400, document
    return status, document


@pytest.fixture
def memory() -> Iterator[Harness]:
    harness = memory_harness()
    yield harness
    harness.close()


def _app(harness: Harness, change: Change | None = None) -> Flask:
    app = create_app(Settings(backend=harness.url), backend=harness.backend)
    if change is not None:
        app.wsgi_app = Deviating(app.wsgi_app, change)  # type: ignore[method-assign]
    return app


@pytest.fixture
def start(memory: Harness) -> Iterator[Callable[..., BridgeServer]]:
    """Starts bridges on one memory backend, each deviating as asked."""
    servers: list[BridgeServer] = []

    def start_one(change: Change | None = None) -> BridgeServer:
        servers.append(BridgeServer(_app(memory, change)))
        return servers[-1]

    yield start_one
    for server in servers:
        server.close()


def compat(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["compat", *map(str, args)])


def live_tasks(harness: Harness) -> list[Any]:
    """Every task hash the backend holds, whatever the queue: a clean run leaves none."""
    backend = harness.backend
    assert isinstance(backend, RedisBackend)
    return list(backend.client.scan_iter(f"{backend.prefix}:*:tasks"))


def scenario_lines(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[1] in SCENARIOS:
            lines[words[1]] = line
    return lines


def compare_backends(a: Harness, b: Harness, *args: str | Path) -> Result:
    """``compat`` between bridges on two backends. The Cloud Tasks test joins here:
    ``compare_backends(redis, cloudtasks, "--ledger", <its ledger>)`` must exit 0, with
    every accepted difference carrying the ledger's reason and no entry unused."""
    with serving(_app(a)) as on_a, serving(_app(b)) as on_b:
        return compat(on_a.url, on_b.url, *args)


@pytest.mark.redis
def test_memory_and_redis_bridges_show_no_differences(
    redis_server: RedisServer, memory: Harness, tmp_path: Path
) -> None:
    redis = redis_harness(redis_server.url)
    report = tmp_path / "report.json"
    try:
        result = compare_backends(memory, redis, "--json", report)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == "no differences between the endpoints"
        lines = scenario_lines(result.output)
        assert list(lines) == list(SCENARIOS)
        assert all(line.split()[0] == "same" for line in lines.values()), result.output
        document = json.loads(report.read_text())
        assert document["ok"] is True and document["mode"] == "pair"
        assert document["counts"] == {"same": len(SCENARIOS), "accepted": 0, "differs": 0, "error": 0}
        methods = {method for scenario in document["scenarios"] for method in scenario["methods"]}
        assert methods == {method.id for method in Discovery.load().methods}
        assert live_tasks(memory) == [] and live_tasks(redis) == []
    finally:
        redis.close()


def test_a_server_that_sends_int64_fields_as_numbers_is_caught(start: Callable[..., BridgeServer]) -> None:
    bridge, deviating = start(), start(numbers_for_int64)
    result = compat(bridge.url, deviating.url, "--scenario", "insert-named", "--scenario", "queue-stats")
    assert result.exit_code == 1, result.output
    lines = scenario_lines(result.output)
    assert lines["insert-named"].startswith("differs")
    assert 'insert-a.body.enqueueTimestamp: A "µs(insert-a)", B "number µs(insert-a)"' in lines["insert-named"]
    assert lines["queue-stats"].startswith("differs")
    assert "UNEXPLAINED DIFFERENCES between the endpoints: insert-named, queue-stats" in result.output


def test_a_ledger_entry_accepts_the_difference_it_names(start: Callable[..., BridgeServer], tmp_path: Path) -> None:
    bridge, deviating = start(), start(numbers_for_int64)
    ledger = tmp_path / "ledger.toml"
    ledger.write_text(
        """
[[accept]]
scenario = "*"
field = "*Timestamp"
reason = "timestamps arrive as numbers; our workers parse both"

[[accept]]
scenario = "queue-stats"
field = "*.body.stats.*"
reason = "stats arrive as numbers"
"""
    )
    result = compat(
        bridge.url, deviating.url, "--scenario", "insert-named", "--scenario", "queue-stats", "--ledger", ledger
    )
    assert result.exit_code == 0, result.output
    lines = scenario_lines(result.output)
    assert lines["insert-named"].startswith("accepted")
    assert "(accepted: timestamps arrive as numbers; our workers parse both)" in lines["insert-named"]
    assert lines["queue-stats"].startswith("accepted")
    assert result.output.splitlines()[-1].startswith("no unexplained differences between the endpoints")


def test_a_wrong_kind_and_a_different_error_status_are_named(start: Callable[..., BridgeServer]) -> None:
    bridge = start()
    result = compat(bridge.url, start(plural_lease_kind).url, "--scenario", "lease-order")
    assert result.exit_code == 1
    assert 'lease-2.body.kind: A "taskqueue#tasks", B "taskqueues#tasks"' in result.output
    result = compat(bridge.url, start(duplicate_as_bad_request).url, "--scenario", "insert-duplicate")
    assert result.exit_code == 1
    assert "insert-a-again.status: A 409, B 400 [+1 more]" in result.output


def test_an_accepting_entry_may_pin_both_values(start: Callable[..., BridgeServer], tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.toml"
    entry = '[[accept]]\nscenario = "lease-order"\nfield = "*.body.kind"\nreason = "plural kind"\n'
    ledger.write_text(entry + 'a = "taskqueue#tasks"\nb = "taskqueues#task"\n')
    args = ("--scenario", "lease-order", "--ledger", ledger)
    bridge, deviating = start(), start(plural_lease_kind)
    assert compat(bridge.url, deviating.url, *args).exit_code == 1
    ledger.write_text(entry + 'a = "taskqueue#tasks"\nb = "taskqueues#tasks"\n')
    assert compat(bridge.url, deviating.url, *args).exit_code == 0


def test_one_endpoint_is_checked_against_the_expectations(start: Callable[..., BridgeServer], tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = compat(start().url, "--scenario", "renew", "--scenario", "lease-tags", "--json", report)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "no differences from the expectations"
    observed = json.loads(report.read_text())["scenarios"][0]["observations"]
    assert observed["A"] == observed["expected"]
    assert observed["A"]["lease"]["body"]["items"][0]["leaseTimestamp"] == "µs(lease+60s)"

    result = compat(start(plural_lease_kind).url, "--scenario", "lease-tags")
    assert result.exit_code == 1
    assert 'lease-rod.body.kind: got "taskqueues#tasks", expected "taskqueue#tasks"' in result.output


def test_two_endpoints_that_deviate_alike_are_the_same_but_noted(start: Callable[..., BridgeServer]) -> None:
    result = compat(start(plural_lease_kind).url, start(plural_lease_kind).url, "--scenario", "lease-tags")
    assert result.exit_code == 0, result.output
    assert "(both depart from the expectation: lease-rod.body.kind is" in result.output


def test_list_names_every_scenario_and_a_wrong_name_is_a_usage_error() -> None:
    result = compat("--list")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(SCENARIOS)
    result = compat("http://127.0.0.1:9", "--scenario", "no-such")
    assert result.exit_code == 2 and "no scenario 'no-such'" in result.output
    assert compat().exit_code == 2
    assert compat("a", "b", "c").exit_code == 2


def test_a_ledger_entry_without_a_reason_stops_the_command(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.toml"
    ledger.write_text('[[accept]]\nscenario = "*"\nfield = "*"\n')
    result = compat("http://127.0.0.1:9", "--ledger", ledger)
    assert result.exit_code == 2 and "'reason' is required" in result.output


def test_a_scenario_that_fails_half_way_still_cleans_up(start: Callable[..., BridgeServer], memory: Harness) -> None:
    def broken(s: Session) -> None:
        a = s.insert("a")
        s.insert("b")
        s.lease("lease", [a], num=1)
        s.insert(None, symbol="g1")
        raise RuntimeError("the scenario broke")

    bridge = start()
    report = run([bridge.url, bridge.url], [Scenario("broken", "breaks", broken)])
    [result] = report.results
    assert result.status == "error" and not report.ok
    assert result.errors == {"A": "RuntimeError: the scenario broke", "B": "RuntimeError: the scenario broke"}
    assert result.cleanup == {side: {"deleted": 3, "problems": []} for side in "AB"}
    assert live_tasks(memory) == []


def test_a_pinned_queue_serves_repeated_runs_and_must_start_empty(start: Callable[..., BridgeServer]) -> None:
    bridge = start()
    pinned = ("--queue", "pinned", "--scenario", "lease-order", "--scenario", "queue-stats")
    for _ in range(2):
        result = compat(bridge.url, *pinned)
        assert result.exit_code == 0, result.output
    api = bridge.api()
    api.tasks().insert(project="s~compat-check", taskqueue="pinned", body={"id": "left-over"}).execute()
    result = compat(bridge.url, *pinned)
    assert result.exit_code == 1
    assert "the pinned queue pinned holds 1 task(s)" in result.output
    assert api.tasks().get(project="s~compat-check", taskqueue="pinned", task="left-over").execute()


def test_a_bridge_that_asks_for_a_token_is_checked_with_one(memory: Harness, tmp_path: Path) -> None:
    token = "compat-token-0123456789abcdef"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(token)} checker@example.com\n")
    app = create_app(Settings(backend=memory.url, auth="token", tokens_file=tokens), backend=memory.backend)
    report = tmp_path / "report.json"
    with serving(app) as server:
        given = compat(server.url, "--scenario", "renew", "--token", token, "--json", report)
        from_env = CliRunner().invoke(main, ["compat", server.url, "--scenario", "renew"], env={TOKEN_ENV: token})
        without = compat(server.url, "--scenario", "renew")
    assert given.exit_code == 0, given.output
    assert from_env.exit_code == 0, from_env.output
    # The report says a token was sent, never which.
    assert token not in report.read_text()
    assert json.loads(report.read_text())["options"]["token"] == "(sent)"
    assert without.exit_code == 1
    assert "401" in without.output


def test_a_queue_neither_endpoint_has_is_an_error_that_says_what_to_do(memory: Harness, queue_file: Any) -> None:
    # Two bridges serving a queue.yaml: the battery's fresh queues exist on neither.
    queues = queue_file("queue:\n- name: render\n  mode: pull\n")
    other = memory_harness()
    # A pinned queue is shared by both sides of a run: each bridge keeps its own tasks.
    apps = [create_app(Settings(backend=h.url, queues=queues), backend=h.backend) for h in (memory, other)]
    with serving(apps[0]) as a, serving(apps[1]) as b:
        result = compat(a.url, b.url, "--scenario", "insert-named", "--scenario", "renew")
        pinned = compat(a.url, b.url, "--scenario", "renew", "--queue", "missing")
        fixed = compat(a.url, b.url, "--scenario", "renew", "--queue", "render")
    assert result.exit_code == 1, result.output
    lines = scenario_lines(result.output)
    assert all(line.split()[0] == "error" for line in lines.values()) and len(lines) == 2, result.output
    assert "does not exist (HTTP 404)" in lines["renew"]
    assert "both depart" not in result.output and "no differences" not in result.output
    assert "2 scenarios: 0 same, 0 accepted, 0 differ, 2 failed to run" in result.output
    assert "to fix: " in result.output and "--queue NAME" in result.output
    assert pinned.exit_code == 1 and "queue missing at" in pinned.output and "queue.yaml" in pinned.output
    assert fixed.exit_code == 0, fixed.output
    other.close()


def test_one_side_missing_the_queue_is_an_error_too(
    start: Callable[..., BridgeServer], memory: Harness, queue_file: Any
) -> None:
    strict = create_app(Settings(backend=memory.url, queues=queue_file("queue:\n- name: other\n  mode: pull\n")))
    with serving(strict) as b:
        result = compat(start().url, b.url, "--scenario", "renew")
    assert result.exit_code == 1
    assert scenario_lines(result.output)["renew"].startswith("error") and "B: setup: queue" in result.output


def test_an_unreachable_endpoint_is_named_within_two_seconds(start: Callable[..., BridgeServer]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nothing = f"http://127.0.0.1:{closed.getsockname()[1]}"
    started = time.monotonic()
    result = compat(start().url, nothing)
    assert time.monotonic() - started <= 2.0
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"cannot reach {nothing}: ConnectionRefusedError: [Errno 111] Connection refused"
    ]


def test_an_endpoint_that_is_not_a_bridge_is_named(start: Callable[..., BridgeServer]) -> None:
    bridge = start()
    result = compat(bridge.url, bridge.url + "/elsewhere")
    assert result.exit_code == 2
    assert f"{bridge.url}/elsewhere answers, but not as a bridge" in result.output


def test_leases_on_one_queue_are_paced_under_the_cloud_tasks_rate() -> None:
    pacer = LeasePacer(calls=10, window=60.0)
    assert [pacer.delay("pinned", 4) for _ in range(2)] == [0.0, 0.0]
    assert 59.0 < pacer.delay("pinned", 4) <= 60.0  # 12 in the window would be over
    assert pacer.delay("pinned", 2) == 0.0
    assert pacer.delay("other", 10) == 0.0  # each queue has its own budget
