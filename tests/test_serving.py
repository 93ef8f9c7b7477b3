"""One gunicorn configuration, whichever way the server is started."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from bridge.cli import _Gunicorn
from bridge.server import serving
from bridge.server.workers import HeadFirstThreadWorker, JsonErrorSyncWorker, settle
from bridge.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "BRIDGE_BACKEND": "redis://127.0.0.1:1/0",
    "BRIDGE_HOST": "0.0.0.0",
    "BRIDGE_PORT": "9999",
    "BRIDGE_WORKERS": "3",
    "BRIDGE_THREADS": "5",
    "BRIDGE_LOG_LEVEL": "WARNING",
}


def test_serve_and_gunicorn_conf_py_give_gunicorn_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    from_file = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    # gunicorn reads a config file by setting each of its names that is a setting.
    loaded = Config()
    for name, value in from_file.items():
        if name in loaded.settings:
            loaded.set(name, value)
    embedded = _Gunicorn(Settings.from_env()).cfg
    names = serving.gunicorn_options(Settings.from_env()).keys()
    assert {"bind", "workers", "threads", "worker_class", "graceful_timeout", "control_socket_disable"} <= names
    for name in names:
        assert embedded.settings[name].get() == loaded.settings[name].get(), name
    assert from_file["bind"] == "0.0.0.0:9999"
    assert (from_file["workers"], from_file["threads"]) == (3, 5)
    assert issubclass(from_file["worker_class"], HeadFirstThreadWorker)
    assert from_file["loglevel"] == "warning" and from_file["control_socket_disable"] is True
    assert from_file["graceful_timeout"] == serving.GRACEFUL_TIMEOUT


def test_gunicorn_builds_no_access_line_the_bridge_would_drop() -> None:
    cfg = _Gunicorn(Settings()).cfg
    # Given a logging configuration, gunicorn's own logger would build one per request.
    assert Logger(cfg).access_log_enabled
    logger = cfg.logger_class(cfg)
    assert isinstance(logger, serving.NoAccessLogger) and not logger.access_log_enabled


def test_a_worker_reads_its_settings_without_config_getattr(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _Gunicorn(Settings(threads=3)).cfg
    names = list(cfg.settings)
    before = {name: getattr(cfg, name) for name in names}
    asked: list[str] = []
    answer = Config.__getattr__

    def counted(self: Config, name: str) -> object:
        asked.append(name)
        return answer(self, name)

    monkeypatch.setattr(Config, "__getattr__", counted)
    assert cfg.threads == 3 and asked == ["threads"]
    settle(cfg)
    asked.clear()
    assert {name: getattr(cfg, name) for name in names} == before
    assert asked == [] and not cfg.is_ssl


def test_sync_workers_get_one_thread_so_gunicorn_keeps_them_sync() -> None:
    options = serving.gunicorn_options(Settings(worker_class="sync", threads=8))
    assert (options["worker_class"], options["threads"]) == (JsonErrorSyncWorker, 1)
    assert issubclass(JsonErrorSyncWorker, SyncWorker)


def test_the_head_timeout_setting_reaches_the_gthread_worker() -> None:
    options = serving.gunicorn_options(Settings(head_timeout=4))
    assert issubclass(options["worker_class"], ThreadWorker)
    assert options["worker_class"].head_timeout == 4
    assert serving.gunicorn_options(Settings(head_timeout=4))["worker_class"] is options["worker_class"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BRIDGE_WORKER_CLASS": "eventlet"}, "--worker-class (BRIDGE_WORKER_CLASS): 'eventlet' is not one of"),
        ({"BRIDGE_LOG_LEVEL": "loud"}, "--log-level (BRIDGE_LOG_LEVEL): 'loud' is not one of"),
    ],
)
def test_an_unknown_worker_class_or_log_level_stops_the_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


class _Server:
    class cfg:  # noqa: N801 - stands in for gunicorn's Arbiter.cfg
        workers = 2


class _Worker:
    pid = 4242


def test_the_metrics_folder_starts_empty_of_metric_files_and_dead_workers_retire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "metrics"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    serving.on_starting(_Server())
    assert folder.is_dir()
    (folder / "counter_17.db").write_bytes(b"old run")
    (folder / "notes.txt").write_text("not ours")
    serving.on_starting(_Server())
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    (folder / "gauge_livesum_4242.db").write_bytes(b"")
    (folder / "counter_4242.db").write_bytes(b"")
    serving.child_exit(_Server(), _Worker())
    assert sorted(p.name for p in folder.iterdir()) == ["counter_4242.db", "notes.txt"], "counts of the dead stay"
