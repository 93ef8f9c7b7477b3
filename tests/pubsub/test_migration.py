"""MIGRATION.md's "To Pub/Sub" path runs as written: its worker on the stage-1 emulator and
on a Pub/Sub bridge, its command lines in order against Google's Pub/Sub emulator."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bridge import create_app
from bridge.settings import Settings
from tests.support.http import serving
from tests.support.known_differences import ROOT
from tests.support.process import serving_process
from tests.support.pubsub_emulator import PubSubEmulator
from tests.support.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.pubsub, pytest.mark.redis, pytest.mark.slow]

GUIDE = ROOT / "MIGRATION.md"
GUIDE_BRIDGE = "http://127.0.0.1:8082"
GUIDE_EMULATOR = "localhost:8085"
GUIDE_REDIS = "redis://localhost:6379/0"
GUIDE_PORTS = ("8081", "8082")


def _section() -> str:
    found: list[str] = re.findall(r"^## To Pub/Sub.*?(?=^## )", GUIDE.read_text(), re.MULTILINE | re.DOTALL)
    return found[0]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", _section(), re.MULTILINE | re.DOTALL)


def _run(code: str, where: str) -> None:
    namespace: dict[str, Any] = {"__name__": "__migration__"}
    exec(compile(code, f"MIGRATION.md ({where})", "exec"), namespace)
    namespace["api"]._http.close()


def test_the_pubsub_path_has_one_worker_and_its_command_lines() -> None:
    assert len(_blocks("python")) == 1 and len(_blocks("sh")) == 2
    assert (ROOT / "pubsub-ledger.toml").is_file() and "pubsub-ledger.toml" in _blocks("sh")[1]


def test_the_pubsub_ready_worker_runs_on_the_stage_1_emulator_too() -> None:
    [worker] = _blocks("python")
    with serving(create_app(Settings())) as server:
        _run(worker.replace(GUIDE_BRIDGE, server.url), "the Pub/Sub worker on memory://")


def test_the_guides_pubsub_commands_run_as_written_in_order(
    pubsub_emulator: PubSubEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The emulator, the Pub/Sub bridge (two workers) with the worker on it, a Redis
    bridge, then compat between them, which must pass with the ledger. Only addresses
    change: free ports, the test's Redis, the test's emulator (already started)."""
    shutil.copy(ROOT / "pubsub-ledger.toml", tmp_path)
    ports = {guide: str(free_port()) for guide in GUIDE_PORTS}
    redis_url = f"{redis_server.url}?prefix=migration-{secrets.token_hex(4)}"
    prefix = f"m{secrets.token_hex(6)}-"
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    [worker] = _blocks("python")
    ran = []
    with ExitStack() as servers:
        for number, line in enumerate(line for block in _blocks("sh") for line in block.splitlines()):
            words = shlex.split(line)
            if words[0] == "gcloud":
                # Google's tool: the test's emulator stands in for the one it starts.
                assert f"--host-port={GUIDE_EMULATOR}" in words
                ran.append("emulator")
                continue
            given = {}
            while re.match(r"^[A-Z_]+=", words[0]):
                name, _, value = words.pop(0).partition("=")
                given[name] = value.replace(GUIDE_EMULATOR, pubsub_emulator.address)
            assert words[:3] == ["python", "-m", "bridge"], line
            args = []
            for word in words[3:]:
                for guide, port in ports.items():
                    word = word.replace(guide, port)
                if word.startswith("pubsub://"):
                    word += f"&prefix={prefix}"
                args.append(redis_url if word == GUIDE_REDIS else word)
            command, env = [sys.executable, "-m", "bridge", *args], {**environ, **given}
            if args[0] == "serve":
                listening = int(args[args.index("--port") + 1])
                log = tmp_path / f"serve-{number}.log"
                servers.enter_context(serving_process(command, cwd=tmp_path, env=env, port=listening, log=log))
                if args[2].startswith("pubsub://"):
                    _run(worker.replace(GUIDE_BRIDGE, f"http://127.0.0.1:{listening}"), "the Pub/Sub worker")
            else:
                done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=300)
                output = done.stdout.decode() + done.stderr.decode()
                assert done.returncode == 0, f"{shlex.join(args)}:\n{output}"
            ran.append(args[0])
    assert ran == ["emulator", "serve", "serve", "compat"]
    assert "28 scenarios: 0 same, 28 accepted, 0 differ" in output, output
