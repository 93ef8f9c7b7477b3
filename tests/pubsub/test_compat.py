"""``python -m bridge compat`` between a bridge on Redis and one on Pub/Sub (the emulator):
scenario by scenario what a team loses, every difference accepted by the Pub/Sub ledger."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.support.harness import pubsub_harness, redis_harness
from tests.support.known_differences import ROOT
from tests.support.pubsub_emulator import PubSubEmulator
from tests.support.redis_server import RedisServer
from tests.test_compat import compare_backends, live_tasks

pytestmark = [pytest.mark.pubsub, pytest.mark.redis, pytest.mark.slow]

LEDGER = ROOT / "pubsub-ledger.toml"


def test_the_pubsub_bridge_answers_as_the_redis_one_but_for_the_ledgers_differences(
    tmp_path: Path, redis_server: RedisServer, pubsub_emulator: PubSubEmulator
) -> None:
    emulator, pubsub = redis_harness(redis_server.url), pubsub_harness(pubsub_emulator.address)
    report = tmp_path / "report.json"
    try:
        result = compare_backends(emulator, pubsub, "--ledger", LEDGER, "--json", report)
        assert result.exit_code == 0, result.output
        # The battery names its tasks, which Pub/Sub refuses: every scenario differs, each
        # difference with the ledger's reason for it.
        assert "28 scenarios: 0 same, 28 accepted, 0 differ" in result.output, result.output
        document = json.loads(report.read_text())
        assert document["unused_ledger_entries"] == []
        reasons = {entry["reason"] for entry in tomllib.loads(LEDGER.read_text())["accept"]}
        accepted = [d for s in document["scenarios"] for d in s["differences"]]
        assert accepted and all(d["accepted"] in reasons for d in accepted), accepted[:3]
        assert live_tasks(emulator) == []
    finally:
        emulator.close()
        pubsub.close()
