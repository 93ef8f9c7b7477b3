"""docker-compose.yml's pubsub profile: the emulator and a bridge on it, the bridge's
environment run for real against the tests' emulator (no Docker engine runs here)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.client import connect
from tests.support.api import b64
from tests.support.known_differences import ROOT
from tests.support.process import serving_process
from tests.support.pubsub_emulator import PubSubEmulator
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.pubsub, pytest.mark.slow]


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_the_pubsub_profile_runs_the_emulator_and_a_bridge_on_it_only_when_asked() -> None:
    services = _services()
    emulator, bridge = services["pubsub-emulator"], services["pubsub-bridge"]
    assert emulator["profiles"] == bridge["profiles"] == ["pubsub"]
    assert "--host-port=0.0.0.0:8085" in emulator["command"]
    assert bridge["depends_on"]["pubsub-emulator"]["condition"] == "service_healthy"
    environment = bridge["environment"]
    assert environment["BRIDGE_BACKEND"].startswith("pubsub://projects/")
    assert environment["PUBSUB_EMULATOR_HOST"] == "pubsub-emulator:8085"
    assert int(environment["BRIDGE_WORKERS"]) == 2
    assert all("profiles" not in services[name] for name in ("redis", "bridge"))


def test_the_pubsub_bridges_environment_serves_the_example_queues(
    pubsub_emulator: PubSubEmulator, tmp_path: Path
) -> None:
    environment = dict(_services()["pubsub-bridge"]["environment"])
    source, target, *_ = _services()["pubsub-bridge"]["volumes"][0].split(":")
    assert target == environment["BRIDGE_QUEUES"]
    port = free_port()
    prefix = f"c{os.getpid()}{port}-"
    environment.update(
        BRIDGE_QUEUES=str(ROOT / source),
        PUBSUB_EMULATOR_HOST=pubsub_emulator.address,
        BRIDGE_BACKEND=environment["BRIDGE_BACKEND"] + f"&prefix={prefix}",
        BRIDGE_PORT=str(port),
    )
    command = [sys.executable, "-m", "bridge", "serve"]
    env = {**os.environ, **environment}
    with serving_process(command, cwd=ROOT, env=env, port=port, log=tmp_path / "bridge.log"):
        api = connect(f"http://127.0.0.1:{port}")
        tasks = api.tasks()
        where = {"project": "s~my-app", "taskqueue": "render"}
        tasks.insert(**where, body={"payloadBase64": b64(b"frame 1")}).execute()
        [task] = tasks.lease(**where, numTasks=10, leaseSecs=60).execute()["items"]
        tasks.delete(**where, task=task["id"]).execute()
        assert api.taskqueues().get(**where).execute()["maxLeases"] == 5
        api._http.close()
