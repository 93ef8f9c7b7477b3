"""The bridge's workers against the gunicorn that is installed: what they rely on is there,
and a gunicorn they were not written for gets gunicorn's own worker, with a warning."""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gunicorn
import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from bridge.server import gunicorn_internals
from bridge.server.sockets import raise_open_files_limit
from bridge.server.workers import HeadFirstThreadWorker, JsonErrorSyncWorker, worker_class
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_classes() -> Iterator[None]:
    """`worker_class` caches its answer: each test here asks again."""
    worker_class.cache_clear()
    yield
    worker_class.cache_clear()


def test_the_installed_gunicorn_is_the_one_the_workers_were_written_for() -> None:
    # Fails on an upgrade that changes what bridge/server/workers.py relies on; after
    # checking the workers against the new release, add it to TESTED_VERSIONS.
    assert gunicorn_internals.problems() == []


def test_the_requirements_pin_a_tested_gunicorn() -> None:
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("gunicorn==")]
    assert [pin.removeprefix("gunicorn==") for pin in pins] == [gunicorn_internals.TESTED_VERSIONS[0]]


def test_a_changed_method_or_a_lost_attribute_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def _keepalive_after(self: Any, conn: Any) -> bool:
        return False

    monkeypatch.setattr(ThreadWorker, "_keepalive_after", _keepalive_after)
    monkeypatch.setattr(gunicorn_internals, "CONNECTION_ATTRIBUTES", (*gunicorn_internals.CONNECTION_ATTRIBUTES, "x"))
    found = gunicorn_internals.problems()
    assert found == [
        "ThreadWorker._keepalive_after takes ('self', 'conn'), not ('self', 'conn', 'keepalive')",
        "a connection has no x",
    ]


@pytest.mark.parametrize(
    ("kind", "stock", "bridge"),
    [("gthread", ThreadWorker, HeadFirstThreadWorker), ("sync", SyncWorker, JsonErrorSyncWorker)],
)
def test_an_untested_gunicorn_runs_its_own_worker_and_the_master_says_why(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fresh_classes: None,
    kind: str,
    stock: type,
    bridge: type,
) -> None:
    assert issubclass(worker_class(kind), bridge)
    worker_class.cache_clear()
    monkeypatch.setattr(gunicorn, "__version__", "99.0.0")
    chosen: Any = worker_class(kind)
    assert issubclass(chosen, stock) and not issubclass(chosen, bridge)
    with caplog.at_level(logging.WARNING):
        chosen.check_config(Config(), logging.getLogger("gunicorn.error"))
    [warning] = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert "gunicorn 99.0.0 is not a tested version (27.0.1)" in warning
    assert f"gunicorn's own {stock.__name__} worker" in warning and "requirements.txt" in warning


def _worker(cfg: Config | None = None) -> HeadFirstThreadWorker:
    cfg = cfg or Config()
    return worker_class("gthread")(0, os.getpid(), [], None, 30, cfg, logging.getLogger("test"))  # type: ignore[no-any-return]


def test_a_worker_without_what_gunicorns_init_set_refuses_to_boot(fresh_classes: None) -> None:
    worker = _worker()
    del worker.nr_conns
    with pytest.raises(
        RuntimeError, match="the bridge's worker cannot run on this gunicorn: the worker has no nr_conns"
    ):
        worker.init_process()
    worker.tmp.close()


@pytest.mark.parametrize(("setting", "value"), [("http2_cleartext", "prior-knowledge"), ("http2_cleartext", "upgrade")])
def test_http2_settings_stop_the_start_instead_of_blocking_the_event_loop(
    fresh_classes: None, setting: str, value: str
) -> None:
    cfg = Config()
    cfg.set(setting, value)
    with pytest.raises(RuntimeError, match="serves HTTP/1.1 only.*GUNICORN_CMD_ARGS"):
        chosen: Any = worker_class("gthread")
        chosen.check_config(cfg, logging.getLogger("test"))


def test_gunicorn_cmd_args_asking_for_h2c_stop_the_container_command(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GUNICORN_CMD_ARGS": "--http2-cleartext prior-knowledge",
        "BRIDGE_PORT": str(free_port()),
        "BRIDGE_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "bridge:create_app()"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "serves HTTP/1.1 only" in result.stderr and "http2_cleartext" in result.stderr


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    script = (
        "import resource; from bridge.server.sockets import raise_open_files_limit;"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512));"
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["512", "(512,", "512)"], result.stderr
    assert raise_open_files_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
