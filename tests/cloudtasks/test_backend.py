"""What only the Cloud Tasks backend has: project names, queue creation, stats, settings, credentials."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from backends import errors
from backends.base import LeaseRequest, NewTask, Queue
from backends.cloudtasks.backend import CloudTasksBackend
from backends.observed import ObservedBackend
from bridge import create_app
from bridge.cli import main
from bridge.settings import Settings, SettingsError
from tests.cloudtasks.conftest import LOCATION, QUEUE_NAME
from tests.support.api import insert, listed, stats
from tests.support.cloudtasks_fake import FakeCloudTasks
from tests.support.http import error_of, serving

pytestmark = pytest.mark.cloudtasks

URL = f"cloudtasks://{LOCATION}"
WORK = Queue("demo-app", "work")


def test_by_default_a_call_may_name_only_the_configured_project(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work")
    with serving(create_app(Settings(), backend=open_ct())) as server:
        api = server.api()
        for project in ("demo-app", "s~demo-app", "e~demo-app"):
            insert(api, project=project, id=f"from-{project.replace('~', '-')}")
        assert len(listed(api, project="dev~demo-app")) == 3
        envelope = error_of(api.tasks().list(project="s~other-app", taskqueue="work"), 404, "notFound")
    assert envelope["error"]["errors"][0]["location"] == "project"
    assert "other-app" in envelope["error"]["message"] and "demo-app" in envelope["error"]["message"]


def test_listed_projects_are_aliases_of_the_configured_one(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work")
    backend = open_ct("projects=my-app,example.com:my-app")
    backend.insert(Queue("my-app", "work"), NewTask("t1", b"x"))
    assert [t.id for t in backend.list_tasks(Queue("example.com:my-app", "work"))] == ["t1"]
    assert list(fake.queues[QUEUE_NAME].tasks) == [f"{QUEUE_NAME}/tasks/t1"]
    with pytest.raises(errors.NotFound):
        backend.list_tasks(Queue("demo-app", "work"))


def test_a_queue_name_with_an_underscore_is_refused_and_says_why(fake: FakeCloudTasks, open_ct: Any) -> None:
    backend = open_ct("projects=*&create_queues=true")
    for queue, location in ((Queue("demo-app", "test_queue"), "taskqueue"), (Queue("test_project", "work"), "project")):
        with pytest.raises(errors.InvalidArgument, match="Cloud Tasks") as refused:
            backend.insert(queue, NewTask("t1", b"x"))
        assert refused.value.location == location
    assert fake.queues == {}
    assert backend.list_queues("test_project") == []


def test_a_project_with_an_underscore_is_served_as_an_alias(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work")
    backend = open_ct("projects=test_project")
    backend.insert(Queue("test_project", "work"), NewTask("t1", b"x"))
    assert list(fake.queues[QUEUE_NAME].tasks) == [f"{QUEUE_NAME}/tasks/t1"]


def test_a_star_makes_each_project_name_its_namesake(fake: FakeCloudTasks, open_ct: Any) -> None:
    backend = open_ct("projects=*&create_queues=true")
    backend.insert(Queue("example.com:shop", "work"), NewTask("t1", b"x"))
    backend.insert(Queue("other-app", "work"), NewTask("t2", b"x"))
    assert sorted(fake.queues) == [
        "projects/example.com:shop/locations/us-central1/queues/work",
        "projects/other-app/locations/us-central1/queues/work",
    ]


def test_without_create_queues_an_unknown_queue_is_a_404_everywhere(fake: FakeCloudTasks, open_ct: Any) -> None:
    backend = open_ct()
    calls: list[Callable[[], Any]] = [
        lambda: backend.insert(WORK, NewTask("t1", b"x")),
        lambda: backend.lease(WORK, LeaseRequest(1, 1_000_000)),
        lambda: backend.list_tasks(WORK),
        lambda: backend.queue_info(WORK, with_stats=True),
    ]
    for call in calls:
        with pytest.raises(errors.NotFound) as caught:
            call()
        assert caught.value.location == "taskqueue" and "work" in caught.value.message
    for call in (lambda: backend.get(WORK, "t1"), lambda: backend.delete(WORK, "t1")):
        with pytest.raises(errors.NotFound) as caught:
            call()
        assert caught.value.location == "task"
    assert fake.queues == {}


def test_created_queues_take_the_queue_files_limit_and_the_tombstone_setting(
    fake: FakeCloudTasks, open_ct: Any
) -> None:
    backend = open_ct("create_queues=true", tombstone_seconds=120)
    backend.insert(Queue("demo-app", "limited", max_leases=3), NewTask("t1", b"x"))
    backend.insert(Queue("demo-app", "free"), NewTask("t1", b"x"))
    limited, free = fake.queues[f"{LOCATION}/queues/limited"], fake.queues[f"{LOCATION}/queues/free"]
    assert (limited.pull, limited.max_attempts, limited.tombstone_us) == (True, 3, 120_000_000)
    assert free.max_attempts is None


def test_max_leases_is_the_cloud_tasks_queues_max_attempts(fake: FakeCloudTasks, open_ct: Any) -> None:
    fake.add_queue(LOCATION, "work", max_attempts=7)
    fake.add_queue(LOCATION, "free")
    backend = open_ct()
    assert backend.queue_info(Queue("demo-app", "work", max_leases=2), with_stats=False).max_leases == 7
    assert backend.queue_info(Queue("demo-app", "free", max_leases=2), with_stats=False).max_leases is None


def test_stats_give_counts_and_the_oldest_eta_but_no_lease_counts(ct: CloudTasksBackend) -> None:
    empty = ct.queue_info(WORK, with_stats=True).stats
    assert empty is not None and (empty.total_tasks, empty.oldest_eta_us) == (0, None)
    first = ct.insert(WORK, NewTask("t1", b"x"))
    ct.insert(WORK, NewTask("t2", b"x"))
    counted = ct.queue_info(WORK, with_stats=True).stats
    assert counted is not None
    assert (counted.total_tasks, counted.oldest_eta_us) == (2, first.eta_us)
    assert (counted.leased_last_minute, counted.leased_last_hour) == (None, None)
    with serving(create_app(Settings(), backend=ct)) as server:
        shown = stats(server.api(), project="demo-app")
    assert shown == {"totalTasks": 2, "oldestTask": str(first.eta_us // 1_000_000)}


def test_list_sorts_the_page_the_service_returns_in_no_order(ct: CloudTasksBackend) -> None:
    base = ct.insert(WORK, NewTask("z-first", b"x")).eta_us
    for i in range(20):
        ct.insert(WORK, NewTask(f"t{i:02d}", b"x", eta_us=base + (20 - i) * 1_000_000))
    listed_ids = [task.id for task in ct.list_tasks(WORK)]
    assert listed_ids == ["z-first"] + [f"t{i:02d}" for i in range(19, -1, -1)]
    assert all(task.payload is None for task in ct.list_tasks(WORK))


def test_a_lease_larger_than_grpcs_default_message_limit_arrives_whole(ct: CloudTasksBackend) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB, the largest v1 payload
    for i in range(6):
        ct.insert(WORK, NewTask(f"t{i}", big))
    leased = ct.lease(WORK, LeaseRequest(num_tasks=10, lease_us=60_000_000))
    assert len(leased) == 6 and all(task.payload == big for task in leased)


def test_ping_answers_while_the_service_does_and_503_when_it_is_gone(
    fake: FakeCloudTasks, ct: CloudTasksBackend
) -> None:
    ct.ping()
    fake.stop()
    with pytest.raises(errors.Unavailable):
        ct.ping()


@pytest.mark.parametrize(
    "url, words",
    [
        ("cloudtasks://projects/p", ["cloudtasks://projects/PROJECT/locations/LOCATION"]),
        ("cloudtasks://projects/p/locations/l/queues/q", ["cloudtasks://projects/PROJECT/locations/LOCATION"]),
        (URL + "?colour=red", ["unknown option", "colour"]),
        (URL + "?create_queues=maybe", ["create_queues", "true or false"]),
        (URL + "?attempts=many", ["attempts"]),
        (URL + "?attempts=0", ["attempts"]),
    ],
)
def test_a_bad_url_is_refused_with_a_message_saying_what_is_expected(url: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        CloudTasksBackend.from_url(url, endpoint="127.0.0.1:1")
    for word in words:
        assert word in str(caught.value)


def _service_account_file(folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = folder / "key.json"
    info = {
        "type": "service_account",
        "project_id": "demo-app",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "bridge@demo-app.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info))
    return path


def test_a_service_account_file_is_the_clients_credentials(tmp_path: Path) -> None:
    key = _service_account_file(tmp_path)
    app = create_app(Settings.from_env({"BRIDGE_BACKEND": URL, "BRIDGE_CLOUDTASKS_CREDENTIALS": str(key)}))
    metered = app.extensions["bridge"].backend
    assert isinstance(metered, ObservedBackend)
    backend = metered.inner
    assert isinstance(backend, CloudTasksBackend)
    credentials = backend.client.transport._credentials
    assert isinstance(credentials, service_account.Credentials)
    assert credentials.service_account_email == "bridge@demo-app.iam.gserviceaccount.com"
    backend.close()


def test_without_application_default_credentials_the_error_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ValueError) as caught:
        CloudTasksBackend.from_url(URL)
    assert "gcloud auth application-default login" in str(caught.value)
    assert "BRIDGE_CLOUDTASKS_CREDENTIALS" in str(caught.value)
    result = CliRunner().invoke(main, ["serve", "--backend", URL])
    assert result.exit_code == 1 and "application-default" in result.output


def test_the_endpoint_setting_reaches_the_backend_from_the_environment(fake: FakeCloudTasks) -> None:
    fake.add_queue(LOCATION, "work")
    settings = Settings.from_env({"BRIDGE_BACKEND": URL, "BRIDGE_CLOUDTASKS_ENDPOINT": fake.address})
    app = create_app(settings)
    with serving(app) as server:
        insert(server.api(), project="demo-app", id="t1")
    app.extensions["bridge"].backend.close()
    assert list(fake.queues[QUEUE_NAME].tasks) == [f"{QUEUE_NAME}/tasks/t1"]


@pytest.mark.parametrize(
    "environ, words",
    [
        ({"BRIDGE_CLOUDTASKS_ENDPOINT": "localhost:8123"}, ["BRIDGE_CLOUDTASKS_ENDPOINT", "cloudtasks://"]),
        ({"BRIDGE_CLOUDTASKS_CREDENTIALS": "/etc/hosts"}, ["--cloudtasks-credentials", "cloudtasks://"]),
        (
            {"BRIDGE_BACKEND": URL, "BRIDGE_CLOUDTASKS_ENDPOINT": "localhost"},
            ["BRIDGE_CLOUDTASKS_ENDPOINT", "host:port"],
        ),
        ({"BRIDGE_BACKEND": URL, "BRIDGE_CLOUDTASKS_CREDENTIALS": "/no/such/key.json"}, ["not a file"]),
        (
            {"BRIDGE_BACKEND": URL, "BRIDGE_CLOUDTASKS_ENDPOINT": "h:1", "BRIDGE_CLOUDTASKS_CREDENTIALS": "/etc/hosts"},
            ["without credentials", "--cloudtasks-credentials"],
        ),
    ],
)
def test_cloudtasks_settings_that_cannot_work_fail_at_start_up(environ: dict[str, str], words: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    for word in words:
        assert word in str(caught.value)


def test_the_cli_options_twin_the_environment(fake: FakeCloudTasks) -> None:
    result = CliRunner().invoke(main, ["serve", "--backend", "memory://", "--cloudtasks-endpoint", fake.address])
    assert result.exit_code == 1 and "--cloudtasks-endpoint" in result.output
