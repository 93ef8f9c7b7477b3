"""The queue CLI against a running bridge: tables for people, JSON for scripts."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bridge.access.auth import hash_token
from bridge.cli import main
from bridge.settings import Settings
from tests.support.http import BridgeServer, memory_bridge

ADMIN_TOKEN = "admin-token-0123456789abcdef"
WORKER_TOKEN = "worker-token-0123456789abcdef"


@pytest.fixture
def server(memory_server: BridgeServer) -> BridgeServer:
    return memory_server


def cli(server: BridgeServer, *args: str, token: str | None = None, stdin: str | None = None) -> Result:
    env = {"BRIDGE_URL": server.url, "BRIDGE_PROJECT": "", "BRIDGE_CLIENT_TOKEN": token or ""}
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def insert(api: Any, queue: str, task: str, payload: bytes, **fields: Any) -> None:
    body = {"id": task, "payloadBase64": base64.urlsafe_b64encode(payload).decode(), **fields}
    api.tasks().insert(project="s~my-app", taskqueue=queue, body=body).execute()


def test_queues_lists_every_queue_with_its_counts(server: BridgeServer) -> None:
    api = server.api()
    insert(api, "render", "a", b"1")
    insert(api, "render", "b", b"2", tag="movie")
    insert(api, "reports", "c", b"3")
    api.tasks().lease(project="s~my-app", taskqueue="render", numTasks=1, leaseSecs=60).execute()
    lines = ok(cli(server, "queues")).splitlines()
    assert lines[0].split() == [
        "PROJECT",
        "QUEUE",
        "TOTAL",
        "AVAILABLE",
        "LEASED",
        "DELAYED",
        "LEASED/H",
        "DROPPED",
        "PAUSED",
    ]
    assert lines[1].split() == ["my-app", "render", "2", "1", "1", "0", "1", "0"]
    assert lines[2].split() == ["my-app", "reports", "1", "1", "0", "0", "0", "0"]
    listed = json.loads(ok(cli(server, "queues", "--json")))
    assert [(q["project"], q["name"], q["stats"]["totalTasks"]) for q in listed] == [
        ("my-app", "render", 2),
        ("my-app", "reports", 1),
    ]


def test_tasks_filters_by_tag_and_state_and_finds_the_project(server: BridgeServer) -> None:
    api = server.api()
    insert(api, "render", "a", b"1", tag="movie")
    insert(api, "render", "b", b"2", tag="still")
    insert(api, "render", "c", b"3", tag="movie")
    api.tasks().lease(
        project="s~my-app", taskqueue="render", numTasks=1, leaseSecs=60, groupByTag=True, tag="movie"
    ).execute()
    table = ok(cli(server, "tasks", "render")).splitlines()
    assert table[0].split() == ["TASK", "TAG", "STATE", "ETA", "LEASES"]
    assert [line.split()[0] for line in table[1:]] == ["b", "c", "a"]  # ETA order: a's lease moved it last
    movie = json.loads(ok(cli(server, "tasks", "render", "--tag", "movie", "--json")))
    assert [(t["id"], t["state"], t["leases"]) for t in movie] == [("c", "available", 0), ("a", "leased", 1)]
    leased = json.loads(ok(cli(server, "tasks", "render", "--state", "leased", "--project", "s~my-app", "--json")))
    assert [t["id"] for t in leased] == ["a"]


def test_insert_then_peek_shows_the_payload_and_eta(server: BridgeServer, tmp_path: Path) -> None:
    said = ok(cli(server, "insert", "render", "--project", "s~my-app", "--payload", "hello", "--tag", "t", "--id", "x"))
    assert said.startswith("inserted x into s~my-app/render, ETA ")
    (tmp_path / "blob").write_bytes(b"\x00\xffbinary")
    later = json.loads(
        ok(cli(server, "insert", "render", "--payload", f"@{tmp_path / 'blob'}", "--eta", "3000", "--json"))
    )
    assert base64.urlsafe_b64decode(later["payloadBase64"]) == b"\x00\xffbinary"
    peek = ok(cli(server, "peek", "render", "x")).splitlines()
    assert peek[0] == "task:     x" and "tag:      t" in peek and peek[-1] == "hello"
    assert any(line.startswith("eta:") and line.endswith(("ago)", "(now)")) for line in peek)
    delayed = ok(cli(server, "peek", "render", later["id"])).splitlines()
    assert any(line.startswith("eta:") and "(in 49 min)" in line for line in delayed)
    assert delayed[-1] == "00ff 6269 6e61 7279"


def test_purge_empties_the_queue_as_the_api_sees_it(server: BridgeServer) -> None:
    api = server.api()
    for name in ("a", "b", "c"):
        insert(api, "render", name, b"x")
    insert(api, "reports", "keep", b"x")
    assert ok(cli(server, "purge", "render", "--yes")).strip() == "Purged render: 3 tasks deleted"
    assert "items" not in api.tasks().list(project="s~my-app", taskqueue="render").execute()
    assert len(api.tasks().list(project="s~my-app", taskqueue="reports").execute()["items"]) == 1


def test_errors_are_one_line_naming_the_cause(server: BridgeServer) -> None:
    missing = cli(server, "peek", "render", "nothing", "--project", "my-app")
    assert missing.exit_code == 1 and missing.output.startswith("Error: 404 notFound: ")
    unknown = cli(server, "tasks", "nowhere")
    assert unknown.exit_code == 2 and "give --project" in unknown.output
    down = CliRunner().invoke(main, ["queues", "--url", "http://127.0.0.1:9"])
    assert down.exit_code == 1
    assert "no bridge answers at http://127.0.0.1:9" in down.output and "--url (BRIDGE_URL)" in down.output


def test_with_auth_on_only_an_admins_token_may_use_the_admin_commands(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(ADMIN_TOKEN)} ops@example.com\n{hash_token(WORKER_TOKEN)} worker@example.com\n")
    settings = Settings(auth="token", tokens_file=tokens, admins=("ops@example.com",))
    with memory_bridge(settings) as server:
        assert ok(cli(server, "insert", "render", "--project", "app", "--payload", "x", token=WORKER_TOKEN))
        anonymous = cli(server, "queues")
        assert anonymous.exit_code == 1 and "401" in anonymous.output
        worker = cli(server, "queues", token=WORKER_TOKEN)
        assert worker.exit_code == 1 and "403 forbidden" in worker.output and "--admins" in worker.output
        assert "render" in ok(cli(server, "queues", token=ADMIN_TOKEN))
        assert "1 task deleted" in ok(cli(server, "purge", "render", "--yes", token=ADMIN_TOKEN))


def test_purge_without_yes_and_without_a_terminal_refuses_and_deletes_nothing(server: BridgeServer) -> None:
    api = server.api()
    insert(api, "render", "a", b"x")
    # CliRunner's standard input is no terminal, as a pipe or a script's is.
    refused = cli(server, "purge", "render")
    assert refused.exit_code == 2 and "give --yes" in refused.output
    assert [task["id"] for task in api.tasks().list(project="s~my-app", taskqueue="render").execute()["items"]] == [
        "a"
    ]


def test_pause_and_resume_stop_and_restart_leases(server: BridgeServer) -> None:
    api = server.api()
    insert(api, "render", "a", b"x")
    assert "Paused render" in ok(cli(server, "pause", "render"))
    assert "yes" in ok(cli(server, "queues")).splitlines()[1].split()
    lease = api.tasks().lease(project="s~my-app", taskqueue="render", numTasks=1, leaseSecs=60)
    assert "items" not in lease.execute()
    assert ok(cli(server, "resume", "render")).strip() == "Resumed render"
    assert [task["id"] for task in lease.execute()["items"]] == ["a"]


def test_release_and_delete_act_on_one_task(server: BridgeServer) -> None:
    api = server.api()
    insert(api, "render", "a", b"x")
    insert(api, "render", "b", b"x")
    api.tasks().lease(project="s~my-app", taskqueue="render", numTasks=2, leaseSecs=600).execute()
    assert "Released the lease of a" in ok(cli(server, "release", "render", "a"))
    assert json.loads(ok(cli(server, "delete", "render", "b", "--json"))) == {"message": "Deleted task b"}
    states = {t["id"]: t["state"] for t in json.loads(ok(cli(server, "tasks", "render", "--json")))}
    assert states == {"a": "available"}


def test_clear_tombstones_frees_deleted_names(server: BridgeServer) -> None:
    api = server.api()
    insert(api, "render", "a", b"x")
    api.tasks().delete(project="s~my-app", taskqueue="render", task="a").execute()
    assert "Cleared 1 tombstone of render" in ok(cli(server, "clear-tombstones", "render"))
    insert(api, "render", "a", b"again")


def test_dead_letters_lists_the_tasks_dropped_after_max_leases(tmp_path: Path) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text("queue:\n- name: render\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 1\n")
    with memory_bridge(Settings(queues=queues)) as server:
        api = server.api()
        insert(api, "render", "once", b"12345", tag="t")
        for _ in range(2):
            api.tasks().lease(project="s~my-app", taskqueue="render", numTasks=1, leaseSecs=0).execute()
        assert ok(cli(server, "dead-letters", "render", "--project", "my-app")).splitlines()[1].split()[:4] == [
            "once",
            "t",
            "1",
            "5",
        ]
        assert [d["id"] for d in json.loads(ok(cli(server, "dead-letters", "render", "--project", "my-app", "--json")))]


def test_queues_names_what_queue_yaml_declares_before_any_call(tmp_path: Path) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text("queue:\n- name: render\n  mode: pull\n")
    with memory_bridge(Settings(queues=queues)) as server:
        assert "queue.yaml declares render; give --project" in ok(cli(server, "queues"))
        assert ok(cli(server, "queues", "--project", "my-app")).splitlines()[1].split()[:3] == [
            "my-app",
            "render",
            "0",
        ]
