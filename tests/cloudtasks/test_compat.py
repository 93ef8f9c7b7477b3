"""``python -m bridge compat`` between the emulator and the proxy: only the ledger's differences."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from tests.support.harness import cloudtasks_harness, redis_harness
from tests.support.known_differences import ROOT
from tests.support.redis_server import RedisServer
from tests.test_compat import compare_backends, live_tasks

pytestmark = [pytest.mark.cloudtasks, pytest.mark.redis]

LEDGER = ROOT / "cloudtasks-ledger.toml"


def test_the_proxy_answers_as_the_emulator_on_redis_but_for_the_ledgers_differences(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    emulator, proxy = redis_harness(redis_server.url), cloudtasks_harness()
    assert proxy.fake is not None
    report = tmp_path / "report.json"
    try:
        result = compare_backends(emulator, proxy, "--ledger", LEDGER, "--json", report)
        assert result.exit_code == 0, result.output
        document = json.loads(report.read_text())
        assert document["unused_ledger_entries"] == []
        reasons = {entry["reason"] for entry in tomllib.loads(LEDGER.read_text())["accept"]}
        accepted = [d for s in document["scenarios"] for d in s["differences"]]
        assert accepted and all(d["accepted"] in reasons for d in accepted), accepted[:3]
        assert live_tasks(emulator) == []
        assert all(queue.tasks == {} for queue in proxy.fake.queues.values())
    finally:
        emulator.close()
        proxy.close()


def test_compat_says_when_cloud_tasks_throttled_leases_during_the_run(redis_server: RedisServer) -> None:
    emulator, proxy = redis_harness(redis_server.url), cloudtasks_harness()
    assert proxy.fake is not None
    try:
        proxy.fake.fail(gexc.ResourceExhausted, methods=["LeaseTasks"])
        result = compare_backends(emulator, proxy, "--scenario", "lease-order")
    finally:
        emulator.close()
        proxy.close()
    assert result.exit_code == 1
    assert "B http://" in result.output and "Cloud Tasks refused 1 lease call(s) for its rate" in result.output
    # (Both bridges run in this process and share its counters, so A reports it as well.)
