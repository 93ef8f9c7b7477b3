"""gcloud's ``alpha tasks`` commands on the bridge's v2beta2 front (REST), as a user runs
them, sharing queues with a v1 worker.

gcloud is pointed at the bridge as the README says (``api_endpoint_overrides/cloudtasks``,
``auth/disable_credentials``), through the environment variables of those properties,
with a configuration directory of its own: the machine's gcloud configuration is never
read or changed. It is told it is not on Google Compute Engine (its cache file, which it
would otherwise fill by looking the metadata server up), so it reaches nothing but the
bridge. gcloud starts slowly (a second or more a command), so each test runs a whole
story; ``--log-http`` shows what the bridge answered, word for word.

Without gcloud and its alpha component the tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.support.api import b64, insert, lease, listed
from tests.support.http import BridgeServer

pytestmark = pytest.mark.memory

PROJECT = "demo-app"
LOCATION = "us-central1"
#: How long one command may take on a loaded machine (gcloud itself takes a second or two).
COMMAND_SECONDS = 300
_ANSWER = re.compile(r"---- response start ----\nstatus: (\d+)\n.*?-- body start --\n(.*?)\n?-- body end --", re.DOTALL)
_URI = re.compile(r"^uri: (\S+)$", re.MULTILINE)


@dataclass
class Ran:
    """One gcloud command: its exit code, output, and the HTTP exchanges it logged."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> Any:
        """What the command printed (``--format=json``)."""
        return json.loads(self.stdout) if self.stdout.strip() else None

    @property
    def answers(self) -> list[tuple[int, Any]]:
        """Each response's status and JSON body, as the bridge sent them."""
        return [
            (int(status), json.loads(body) if body.strip() else None) for status, body in _ANSWER.findall(self.stderr)
        ]

    @property
    def answer(self) -> Any:
        """The body of the last response."""
        return self.answers[-1][1]

    @property
    def uris(self) -> list[str]:
        return _URI.findall(self.stderr)


class Gcloud:
    """gcloud pointed at one bridge, with a configuration directory of its own."""

    def __init__(self, binary: str, config: Path, url: str) -> None:
        self.binary = binary
        self.config = config
        config.mkdir(parents=True, exist_ok=True)
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("CLOUDSDK_")}
        if "CLOUDSDK_PYTHON" in os.environ:
            inherited["CLOUDSDK_PYTHON"] = os.environ["CLOUDSDK_PYTHON"]
        self.env = {
            **inherited,
            "CLOUDSDK_CONFIG": str(config),
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDTASKS": f"{url}/",
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_CORE_PROJECT": PROJECT,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "true",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true",
        }

    def run(self, *args: str, ok: bool = True) -> Ran:
        """``gcloud alpha tasks ARGS`` in the bridge's location; it must succeed if ``ok``."""
        # gcloud trusts this cache for ten minutes from its mtime; written before each
        # command, it always says "not on GCE", so gcloud never looks the metadata server up.
        (self.config / "gce").write_text("False")
        command = [self.binary, "alpha", "tasks", *args, "--location", LOCATION, "--format=json", "--log-http"]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=COMMAND_SECONDS, stdin=subprocess.DEVNULL
        )
        ran = Ran(done.returncode, done.stdout, done.stderr)
        if ok:
            assert ran.code == 0, f"{' '.join(args)} failed:\n{ran.stderr}"
        return ran


@pytest.fixture(scope="module")
def gcloud_binary() -> str:
    binary = shutil.which("gcloud")
    if binary is None:
        unavailable("gcloud is not on PATH (the gcloud alpha tasks tests)")
    assert binary is not None
    root = Path(binary).resolve().parent.parent
    if not (root / "lib" / "surface" / "alpha").is_dir():
        unavailable(f"gcloud's alpha component is not installed in {root}")
    return binary


@pytest.fixture
def gcloud(gcloud_binary: str, memory_server: BridgeServer, tmp_path: Path) -> Gcloud:
    return Gcloud(gcloud_binary, tmp_path / "gcloud-config", memory_server.url)


def test_gcloud_creates_updates_pauses_and_purges_a_pull_queue(gcloud: Gcloud, memory_server: BridgeServer) -> None:
    queue = f"gcloud-{uuid.uuid4().hex[:8]}"
    created = gcloud.run("queues", "create-pull-queue", queue, "--max-attempts", "4")
    assert created.answer["state"] == "RUNNING" and created.answer["retryConfig"] == {"maxAttempts": 4}, created.answer
    updated = gcloud.run("queues", "update-pull-queue", queue, "--max-attempts", "6")
    assert (
        "updateMask=retryConfig.maxAttempts" in updated.uris[-1] and updated.answer["retryConfig"]["maxAttempts"] == 6
    )
    # The mask names max_retry_duration, which is cleared: the attempts stay as they are.
    cleared = gcloud.run("queues", "update-pull-queue", queue, "--clear-max-retry-duration")
    assert cleared.answer["retryConfig"] == {"maxAttempts": 6}, cleared.answer
    # A setting the bridge cannot keep: one 400 naming it, which gcloud does not retry.
    for args in (("update-pull-queue", queue), ("create-pull-queue", f"{queue}-x")):
        refused = gcloud.run("queues", *args, "--max-retry-duration", "300s", ok=False)
        assert refused.code != 0 and [status for status, _ in refused.answers] == [400], refused.stderr
        assert "retry_config.max_retry_duration" in refused.answer["error"]["message"]
    described = gcloud.run("queues", "describe", queue)
    assert described.output["retryConfig"] == {"maxAttempts": 6} and described.answer["state"] == "RUNNING"
    assert memory_server.api().taskqueues().get(project=PROJECT, taskqueue=queue).execute()["maxLeases"] == 6

    v1 = memory_server.api()
    for task_id in ("a", "b"):
        insert(v1, queue, project=PROJECT, id=task_id)
    assert gcloud.run("queues", "pause", queue).answer["state"] == "PAUSED"
    assert lease(v1, queue=queue, project=PROJECT) == []
    assert gcloud.run("queues", "resume", queue).answer["state"] == "RUNNING"
    gcloud.run("queues", "purge", queue, "--quiet")
    assert listed(v1, queue, project=PROJECT) == []


def test_gcloud_works_a_pull_queue_with_a_v1_worker(gcloud: Gcloud, memory_server: BridgeServer) -> None:
    queue = f"gcloud-{uuid.uuid4().hex[:8]}"
    v1 = memory_server.api()
    insert(v1, queue, project=PROJECT, id="fromv1", tag="blue", payloadBase64=b64(b"v1 work"))
    created = gcloud.run("create-pull-task", "fromgcloud", "--queue", queue, "--payload-content=hello", "--tag=red")
    assert created.answer["view"] == "BASIC" and created.answer["name"].endswith(f"/queues/{queue}/tasks/fromgcloud")
    listing = gcloud.run("list", "--queue", queue)
    assert sorted(task["name"].rsplit("/", 1)[1] for task in listing.output) == ["fromgcloud", "fromv1"]
    assert {task["view"] for task in listing.answer["tasks"]} == {"BASIC"}
    full = gcloud.run("describe", "fromgcloud", "--queue", queue, "--response-view=full").answer
    assert full["view"] == "FULL" and base64.b64decode(full["pullMessage"]["payload"]) == b"hello", full

    # Created through v1; leased, renewed, cancelled and acknowledged through gcloud.
    [leased] = gcloud.run("lease", "--queue", queue, "--lease-duration=60", "--tag=blue").output
    assert leased["name"].endswith("/tasks/fromv1") and leased["status"]["attemptDispatchCount"] == 1
    renewed = gcloud.run(
        "renew-lease", "fromv1", "--queue", queue, "--lease-duration=120", f"--schedule-time={leased['scheduleTime']}"
    ).answer
    assert _time(renewed["scheduleTime"]) > _time(leased["scheduleTime"]), renewed
    gcloud.run("cancel-lease", "fromv1", "--queue", queue, f"--schedule-time={renewed['scheduleTime']}")
    [oldest] = gcloud.run("lease", "--queue", queue, "--lease-duration=60", "--oldest-tag").output
    assert oldest["name"].endswith("/tasks/fromgcloud"), oldest  # the oldest task: fromv1's lease moved its time
    [again] = gcloud.run("lease", "--queue", queue, "--lease-duration=60", "--tag=blue").output
    assert again["status"]["attemptDispatchCount"] == 2
    gcloud.run("acknowledge", "fromv1", "--queue", queue, f"--schedule-time={again['scheduleTime']}")

    # Created through gcloud, leased and deleted by the v1 worker once gcloud gives its lease up.
    gcloud.run("cancel-lease", "fromgcloud", "--queue", queue, f"--schedule-time={oldest['scheduleTime']}")
    [from_gcloud] = lease(v1, queue=queue, project=PROJECT, groupByTag=True, tag="red")
    assert base64.urlsafe_b64decode(from_gcloud["payloadBase64"]) == b"hello"
    v1.tasks().delete(project=PROJECT, taskqueue=queue, task="fromgcloud").execute()

    gcloud.run("create-pull-task", "last", "--queue", queue, "--payload-content=bye")
    gcloud.run("delete", "last", "--queue", queue)
    missing = gcloud.run("describe", "last", "--queue", queue, ok=False)
    assert [status for status, _ in missing.answers] == [404] and missing.answer["error"]["status"] == "NOT_FOUND"
    assert listed(v1, queue, project=PROJECT) == []


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
