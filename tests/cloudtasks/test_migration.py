"""MIGRATION.md's samples run: its Python against the bridge and the fake Cloud Tasks, its
queue.yaml through the bridge's parser, its ``python -m bridge`` lines as commands, in
the guide's order; and it shows the known-differences table the tests use."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from google.cloud import tasks_v2beta2
from google.cloud.tasks_v2beta2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from googleapiclient.errors import HttpError

from backends.cloudtasks.backend import CloudTasksBackend
from bridge import create_app
from bridge.access.queues import QueueRegistry
from bridge.cli import main, serve
from bridge.settings import Settings
from bridge_tools.compat.command import compat
from tests.support import known_differences
from tests.support.cloudtasks_fake import FakeCloudTasks
from tests.support.http import serving
from tests.support.process import serving_process
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.cloudtasks

GUIDE = known_differences.ROOT / "MIGRATION.md"
LOCATION = "projects/my-app/locations/us-central1"
RENDER = f"{LOCATION}/queues/render"
LOCAL_BRIDGE = "http://127.0.0.1:8080"


def _blocks(language: str) -> list[str]:
    """The guide's samples of ``language`` on Cloud Tasks (tests/pubsub/test_migration.py
    runs its "To Pub/Sub" section's)."""
    text = re.sub(r"^## To Pub/Sub.*?(?=^## )", "", GUIDE.read_text(), flags=re.MULTILINE | re.DOTALL)
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def _run(code: str, where: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__migration__"}
    exec(compile(code, f"MIGRATION.md ({where})", "exec"), namespace)
    return namespace


def test_every_sample_has_its_test() -> None:
    assert len(_blocks("python")) == 3, "a new Python sample in MIGRATION.md needs a test here"
    assert len(_blocks("yaml")) == 1 and len(_blocks("sh")) == 4


@pytest.fixture
def proxy(fake: FakeCloudTasks) -> Iterator[CloudTasksBackend]:
    """The bridge's backend as stage 2 runs it, on the fake, with the guide's queue."""
    fake.add_queue(LOCATION, "render")
    backend = CloudTasksBackend.from_url(f"cloudtasks://{LOCATION}", endpoint=fake.address)
    yield backend
    backend.close()


@pytest.mark.parametrize("stage", ["emulator", "proxy"])
def test_the_stage_1_worker_runs_unchanged_on_the_emulator_and_on_the_proxy(
    request: pytest.FixtureRequest, stage: str
) -> None:
    worker = _blocks("python")[0]
    assert LOCAL_BRIDGE in worker
    backend = request.getfixturevalue("proxy") if stage == "proxy" else None
    with serving(create_app(Settings(), backend=backend)) as server:
        _run(worker.replace(LOCAL_BRIDGE, server.url), f"stage 1 worker on the {stage}")
    if stage == "proxy":
        fake: FakeCloudTasks = request.getfixturevalue("fake")
        queue = fake.queues[RENDER]
        assert queue.tasks == {} and f"{RENDER}/tasks/frame-1" in queue.tombstones
        assert "RenewLease" in fake.calls and "LeaseTasks" in fake.calls


def test_the_stage_3_client_runs_against_cloud_tasks(fake: FakeCloudTasks, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add_queue(LOCATION, "render")

    class LocalClient(tasks_v2beta2.CloudTasksClient):
        """The guide's client, on the fake instead of Google (no credentials)."""

        def __init__(self, **options: Any) -> None:
            super().__init__(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(fake.address)))

    monkeypatch.setattr(tasks_v2beta2, "CloudTasksClient", LocalClient)
    namespace = _run(_blocks("python")[1], "stage 3 client")
    namespace["client"].transport.close()
    assert fake.queues[RENDER].tasks == {}
    assert fake.calls == ["CreateTask", "LeaseTasks", "RenewLease", "AcknowledgeTask"]


def test_the_stage_3_client_runs_locally_on_the_bridges_cloud_tasks_front(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.cloudtasks.grpc_server import GrpcFront

    local = _blocks("python")[2]
    assert '"127.0.0.1:8123"' in local
    app = create_app(Settings())
    front = GrpcFront(app.extensions["cloudtasks"], "127.0.0.1:0")
    try:
        client = _run(local.replace("127.0.0.1:8123", f"127.0.0.1:{front.port}"), "stage 3, locally")["client"]
        monkeypatch.setattr(tasks_v2beta2, "CloudTasksClient", lambda **options: client)
        _run(_blocks("python")[1], "stage 3 client on the bridge")
        client.transport.close()
        with serving(app) as server:
            # Acknowledged: gone, and its name reserved, as the stage-1 worker sees the queue.
            tasks = server.api().tasks()
            assert tasks.list(project="s~my-app", taskqueue="render").execute().get("items") is None
            request = tasks.insert(project="s~my-app", taskqueue="render", body={"id": "frame-1"})
            with pytest.raises(HttpError) as caught:
                request.execute()
            assert caught.value.resp.status == 409
    finally:
        front.stop()
        app.extensions["bridge"].backend.close()


def test_the_queue_yaml_sample_is_a_pull_queue_the_bridge_reads(tmp_path: Path) -> None:
    path = tmp_path / "queue.yaml"
    path.write_text(_blocks("yaml")[0])
    render = QueueRegistry.from_file(path).resolve("render")
    assert render.pull and render.max_leases == 5
    assert render.consumers == ("worker@my-app.iam.gserviceaccount.com",)


def _commands() -> list[tuple[dict[str, str], list[str]]]:
    found = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line)
            environ = {}
            while words and re.match(r"^[A-Z_]+=", words[0]):
                name, _, value = words.pop(0).partition("=")
                environ[name] = value
            assert words[:3] == ["python", "-m", "bridge"], line
            found.append((environ, words[3:]))
    return found


def test_the_smoke_command_line_passes_on_a_project_that_serves_pull_queues(fake: FakeCloudTasks) -> None:
    fake.add_queue(LOCATION, "render")
    [(environ, args)] = [(environ, args) for environ, args in _commands() if args[0] == "smoke"]
    assert "BRIDGE_CLOUDTASKS_CREDENTIALS" in environ
    # The key file becomes the fake's address: the same check, without Google.
    result = CliRunner().invoke(main, [*args, "--cloudtasks-endpoint", fake.address], env={})
    assert result.exit_code == 0, result.output
    assert fake.queues[RENDER].tasks == {}


def test_the_serve_command_lines_are_settings_the_bridge_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "queue.yaml").write_text(_blocks("yaml")[0])
    monkeypatch.chdir(tmp_path)
    lines = [(environ, args) for environ, args in _commands() if args[0] == "serve"]
    assert len(lines) == 2
    for environ, args in lines:
        context = serve.make_context("serve", args[1:])
        settings = Settings.from_env(environ, **context.params)
        assert settings.queues == Path("queue.yaml")


def test_the_compat_command_line_names_the_ledger_the_tests_hold_it_to() -> None:
    # tests/cloudtasks/test_compat.py runs this comparison against the fake.
    [(environ, args)] = [(environ, args) for environ, args in _commands() if args[0] == "compat"]
    context = compat.make_context("compat", args[1:])
    assert (known_differences.ROOT / context.params["ledger"]).is_file()
    assert environ == {} and len(context.params["urls"]) == 2


def test_the_guide_shows_the_same_known_differences_as_the_tests_use() -> None:
    assert known_differences.read(GUIDE.read_text()) == known_differences.read()


#: The guide's addresses, and what stands in for Google and the local Redis here.
GUIDE_REDIS = "redis://localhost:6379/0"
GUIDE_PORTS = ("8080", "8081")
COMMAND_TIMEOUT = 300


@pytest.mark.redis
def test_the_guides_commands_run_as_written_in_order(
    fake: FakeCloudTasks, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Stage 1 and 2 as a reader runs them: the emulator, the smoke check, the proxy beside
    it, the worker on both, then compat between them, which must pass with the ledger.

    Only addresses change: free ports for 8080 and 8081, the test's Redis, and the fake
    Cloud Tasks (``--cloudtasks-endpoint``) for Google and the key file.
    """
    # As `gcloud app deploy queue.yaml` makes it: task_retry_limit is max_attempts.
    fake.add_queue(LOCATION, "render", max_attempts=5)
    (tmp_path / "queue.yaml").write_text(_blocks("yaml")[0])
    shutil.copy(known_differences.ROOT / "cloudtasks-ledger.toml", tmp_path)
    ports = {guide: str(free_port()) for guide in GUIDE_PORTS}
    redis_url = f"{redis_server.url}?prefix=migration-{secrets.token_hex(4)}"
    environ = {**os.environ, "PYTHONPATH": str(known_differences.ROOT), "GRPC_VERBOSITY": "ERROR"}
    worker = _blocks("python")[0]

    def local(environ_given: dict[str, str], args: list[str]) -> tuple[dict[str, str], list[str]]:
        words = []
        for word in args:
            for guide, port in ports.items():
                word = word.replace(guide, port)
            words.append(redis_url if word == GUIDE_REDIS else word)
        if any(word.startswith("cloudtasks://") for word in words):
            environ_given = {k: v for k, v in environ_given.items() if k != "BRIDGE_CLOUDTASKS_CREDENTIALS"}
            words += ["--cloudtasks-endpoint", fake.address]
        return {**environ, **environ_given}, [sys.executable, "-m", "bridge", *words]

    ran = []
    with ExitStack() as servers:
        for number, (given, args) in enumerate(_commands()):
            env, command = local(given, args)
            if args[0] == "serve":
                port = int(command[command.index("--port") + 1])
                log = tmp_path / f"serve-{number}.log"
                servers.enter_context(serving_process(command, cwd=tmp_path, env=env, port=port, log=log))
                # The stage-1 worker, unchanged but for its discovery URL, on each server.
                namespace = _run(worker.replace(LOCAL_BRIDGE, f"http://127.0.0.1:{port}"), f"worker on {args[2]}")
                namespace["api"]._http.close()
            else:
                done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=COMMAND_TIMEOUT)
                output = done.stdout.decode() + done.stderr.decode()
                assert done.returncode == 0, f"{shlex.join(args)}:\n{output}"
            ran.append(args[0])
    assert ran == ["serve", "smoke", "serve", "compat"]
    assert output.splitlines()[-1].startswith("no unexplained differences between the endpoints"), output
    assert fake.queues[RENDER].tasks == {}
