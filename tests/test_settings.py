"""Settings, queue.yaml and the CLI: a bad setting stops start-up with one clear line."""

from __future__ import annotations

import re
import socket
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

import bridge
from backends import all_settings, open_backend
from bridge.access.queues import QueueFileError, QueueRegistry
from bridge.cli import main, serve
from bridge.server.serving import backend_answer, startup_line
from bridge.settings import Settings, SettingsError, definitions, own_definitions


def test_defaults_are_the_embedded_backend_on_localhost_8080() -> None:
    settings = Settings.from_env({})
    assert (settings.backend, settings.host, settings.port, settings.workers) == ("memory://", "127.0.0.1", 8080, 1)
    assert settings.queues is None


def test_environment_variables_set_every_field_and_overrides_win(tmp_path: Path) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text("queue: []\n")
    environ = {
        "BRIDGE_BACKEND": "redis://localhost:6379/1",
        "BRIDGE_HOST": "0.0.0.0",
        "BRIDGE_PORT": "9000",
        "BRIDGE_QUEUES": str(queues),
        "BRIDGE_WORKERS": "4",
        "BRIDGE_THREADS": "2",
        "BRIDGE_PUBLIC_URL": "https://tq.example.com",
        "BRIDGE_TOMBSTONE_SECONDS": "60",
        "BRIDGE_MAX_BODY_BYTES": "5000",
    }
    settings = Settings.from_env(environ, port=9100)
    assert settings.backend == "redis://localhost:6379/1"
    assert (settings.host, settings.port, settings.workers, settings.threads) == ("0.0.0.0", 9100, 4, 2)
    assert settings.queues == queues
    assert (settings.public_url, settings.tombstone_seconds, settings.max_body_bytes) == (
        "https://tq.example.com",
        60,
        5000,
    )


@pytest.mark.parametrize(
    "environ, words",
    [
        ({"BRIDGE_BACKEND": "postgres://db"}, ["--backend", "memory://", "redis://", "cloudtasks://"]),
        ({"BRIDGE_PORT": "http"}, ["--port", "whole number"]),
        ({"BRIDGE_PORT": "70000"}, ["--port", "TCP port"]),
        ({"BRIDGE_WORKERS": "0"}, ["--workers", "at least 1"]),
        ({"BRIDGE_WORKERS": "3"}, ["--workers", "memory://", "one worker"]),
        ({"BRIDGE_QUEUES": "/no/such/queue.yaml"}, ["--queues", "not a file"]),
        ({"BRIDGE_PUBLIC_URL": "tq.example.com"}, ["--public-url", "http://"]),
    ],
)
def test_bad_settings_fail_with_a_message_naming_the_setting(environ: dict[str, str], words: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_several_workers_are_allowed_on_redis() -> None:
    assert Settings.from_env({"BRIDGE_BACKEND": "redis://localhost", "BRIDGE_WORKERS": "3"}).workers == 3


@pytest.mark.parametrize("url", ["redis://localhost:1/0?prefx=tq", "redis+cluster://localhost:1?db=2"])
def test_a_redis_url_option_the_backend_does_not_know_is_refused(url: str) -> None:
    # Before, the query string was dropped whatever it held, so a typo went unnoticed.
    with pytest.raises(ValueError, match="unknown option.*(prefx|db).*options: prefix"):
        open_backend(url)


def test_backend_settings_are_passed_to_the_chosen_backend_by_their_argument_names(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text("{}")
    settings = Settings.from_env(
        {"BRIDGE_BACKEND": "cloudtasks://projects/p/locations/l", "BRIDGE_CLOUDTASKS_CREDENTIALS": str(key)}
    )
    assert settings.backend_settings == {"cloudtasks_credentials": str(key)}
    assert settings.backend_options() == {"tombstone_seconds": settings.tombstone_seconds, "credentials": str(key)}


def test_every_backend_setting_is_an_option_of_the_commands_that_open_a_backend() -> None:
    for command in ("serve", "smoke"):
        context = main.make_context("bridge", [command, "--help"], resilient_parsing=True)
        found = main.get_command(context, command)
        assert found is not None
        flags = {opt for param in found.params for opt in param.opts}
        assert {"--" + name.replace("_", "-") for name in all_settings()} <= flags, command


@pytest.mark.parametrize(
    "text, words",
    [
        ("queue: [", ["cannot be read as YAML"]),
        ("queues: []", ["line 1", "unknown key 'queues'"]),
        ("total_storage_limit: 1M", ["'queue:' list"]),
        ("queue:\n- mode: pull", ["entry 1", "name"]),
        ("queue:\n- name: bad_name", ["entry 1", "bad_name"]),
        ("queue:\n- name: a\n  mode: pull\n- name: a\n  mode: pull", ["defined twice"]),
        ("queue:\n- name: a\n  mode: poll", ["mode must be push or pull"]),
        ("queue:\n- name: a\n  mode: pull\n  retry_parameters:\n    task_retry_limit: many", ["task_retry_limit"]),
        ("queue:\n- name: a\n  mode: pull\n  acl:\n  - admin_email: x@y", ["unknown acl entry"]),
        (
            "queue:\n- name: render\n  mode: pull\n  retry_paramters:\n    task_retry_limit: 5",
            ["line 4", "unknown key 'retry_paramters'", "queue 'render'", "retry_parameters"],
        ),
        (
            "queue:\n- name: a\n  mode: pull\n  retry_parameters:\n    task_retry_limt: 5",
            ["line 5", "'task_retry_limt'", "task_retry_limit"],
        ),
        (
            "queue:\n- name: a\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 1\n    task_age_limit: 1d",
            ["line 6", "task_age_limit in retry_parameters of queue 'a'", "push queues only", "remove"],
        ),
    ],
)
def test_a_bad_queue_file_names_the_entry_at_fault(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "queue.yaml"
    path.write_text(text)
    with pytest.raises(QueueFileError) as caught:
        QueueRegistry.from_file(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "args, env, words",
    [
        (["serve", "--workers", "2"], {}, ["--workers", "memory://"]),
        (["serve", "--backend", "mysql://x"], {}, ["unknown backend"]),
        (["serve"], {"BRIDGE_BACKEND": "nats://x"}, ["unknown backend"]),
        (["serve", "--backend", "memory://somewhere"], {}, ["memory:// takes no host"]),
        # An option's value is parsed as its variable's is: one line naming both, not click's usage error.
        (["serve", "--port", "http"], {}, ["--port (BRIDGE_PORT): 'http' is not a whole number"]),
        (["serve", "--worker-class", "gevent"], {}, ["--worker-class (BRIDGE_WORKER_CLASS)", "gthread, sync"]),
        (["serve"], {"BRIDGE_STRICT_LEASES": "sometimes"}, ["--strict-leases (BRIDGE_STRICT_LEASES)"]),
    ],
)
def test_serve_refuses_bad_settings_with_one_line(args: list[str], env: dict[str, str], words: list[str]) -> None:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ")
    for word in words:
        assert word in line


def test_a_queue_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "queue.yaml"
    path.write_bytes(b"queue:\n- name: render\n  mode: pull # r\xe9sum\xe9\n")
    with pytest.raises(QueueFileError, match=r"queue.yaml line 3: not UTF-8"):
        QueueRegistry.from_file(path)


def test_a_push_queue_may_keep_its_task_age_limit(tmp_path: Path) -> None:
    path = tmp_path / "queue.yaml"
    path.write_text(
        "queue:\n- name: mail\n  rate: 1/s\n  retry_parameters:\n    task_retry_limit: 7\n    task_age_limit: 2d\n"
        "- name: render\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 3\n    min_backoff_seconds: 5\n"
    )
    assert [queue.name for queue in QueueRegistry.from_file(path).declared()] == ["render"]


def test_serve_refuses_a_pull_queue_with_a_task_age_limit_naming_file_line_and_reason(tmp_path: Path) -> None:
    # Accepted and ignored it would answer otherwise than App Engine's stub (issue 21, row 4).
    path = tmp_path / "queue.yaml"
    path.write_text("queue:\n- name: limited\n  mode: pull\n  retry_parameters:\n    task_age_limit: 2d\n")
    result = CliRunner().invoke(main, ["serve", "--queues", str(path)])
    assert result.exit_code == 1
    assert f"{path} line 5: task_age_limit" in result.output and "push queues only" in result.output


def test_serve_refuses_a_bad_queue_file(tmp_path: Path) -> None:
    path = tmp_path / "queue.yaml"
    path.write_text("queue:\n- name: bad_name\n")
    result = CliRunner().invoke(main, ["serve", "--queues", str(path)])
    assert result.exit_code == 1
    assert "bad_name" in result.output


def test_new_serving_settings_come_from_the_environment_and_name_their_flag_when_bad() -> None:
    settings = Settings.from_env(
        {
            "BRIDGE_HEAD_TIMEOUT": "4",
            "BRIDGE_MAX_RESPONSE_BYTES": "1000",
            "BRIDGE_PROJECTS": "s~demo-app, other",
            "BRIDGE_STRICT_LEASES": "true",
        }
    )
    assert (settings.head_timeout, settings.max_response_bytes) == (4, 1000)
    assert (settings.projects, settings.strict_leases) == (("s~demo-app", "other"), True)
    for environ, flag in [
        ({"BRIDGE_HEAD_TIMEOUT": "0"}, "--head-timeout"),
        ({"BRIDGE_MAX_RESPONSE_BYTES": "0"}, "--max-response-bytes"),
        ({"BRIDGE_PROJECTS": "not a project"}, "--projects"),
        ({"BRIDGE_STRICT_LEASES": "sometimes"}, "--strict-leases"),
    ]:
        with pytest.raises(SettingsError, match=flag):
            Settings.from_env(environ)


def test_every_setting_has_the_serve_option_its_messages_name() -> None:
    options = {option for param in serve.params for option in getattr(param, "opts", ())}
    envvars = {getattr(param, "envvar", None) for param in serve.params}
    names = [field.name for field in fields(Settings) if field.name != "backend_settings"] + list(all_settings())
    for name in names:
        assert f"--{name.replace('_', '-')}" in options, name
        assert f"BRIDGE_{name.upper()}" in envvars, name


def test_every_field_of_the_settings_is_a_definition() -> None:
    # A field added without `setting()` would have no option, no variable and no check.
    assert set(own_definitions()) == {field.name for field in fields(Settings)} - {"backend_settings"}
    assert set(definitions()) == set(own_definitions()) | set(all_settings())


def test_serve_help_names_each_options_variable_and_default() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    shown = " ".join(result.output.split())
    for setting in definitions().values():
        extra = f"[env var: {setting.envvar}; default: {setting.shown_default}]"
        assert f"{setting.flag} {setting.metavar} {setting.help} {extra}" in shown, setting.name


def _readme_settings_table() -> list[list[str]]:
    """The rows of README's table of settings: option, variable, default, description."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `--")]
    # A cell may hold an escaped bar (`gthread\|sync`).
    return [[cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_the_readme_table_lists_every_setting_with_its_option_variable_and_default() -> None:
    rows = _readme_settings_table()
    listed = [(option, variable, default.strip("`")) for option, variable, default, _ in rows]
    expected = [
        (f"`{setting.flag} {setting.metavar}`", f"`{setting.envvar}`", setting.shown_default)
        for setting in definitions().values()
    ]
    assert listed == expected


def test_version_prints_the_release() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"Task Queue Bridge {bridge.__version__}\n"


def test_a_port_in_use_stops_serve_with_one_line_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert f"port {port} on 127.0.0.1 is in use" in line and "--port (BRIDGE_PORT)" in line


def test_the_start_up_line_says_what_runs_where_without_secrets(tmp_path: Path) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text("queue:\n- name: render\n  mode: pull\n")
    settings = Settings(backend="redis://:s3cret@127.0.0.1:1/0", host="0.0.0.0", port=8090, queues=queues)
    backend = open_backend(settings.backend)
    try:
        line = startup_line(settings, backend_answer(backend))
    finally:
        backend.close()
    assert "\n" not in line and "s3cret" not in line
    for words in (
        f"Task Queue Bridge {bridge.__version__}",
        "redis://:***@127.0.0.1:1/0 NOT ANSWERING",
        f"queues from {queues}",
        "auth none",
        "API http://127.0.0.1:8090/taskqueue/v1beta2/projects/",
        "Discovery http://127.0.0.1:8090/discovery/v1/apis/taskqueue/v1beta2/rest",
        "console http://127.0.0.1:8090/console/",
    ):
        assert words in line
