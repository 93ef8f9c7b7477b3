"""`pip install .` gives the workers' client alone, `pip install '.[server]'` a working
bridge: packages, package data and the console script; requirements.txt is the lock.

The project is installed into a fresh virtual environment (without pip: the running
pip installs into it) from a copy of the clone, its dependencies borrowed from the
running interpreter's site-packages (a .pth file) and built by the setuptools found
there, so that the test needs no download and takes a few seconds. The installed
bridge then serves from a directory far from the clone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import bridge
from tests.support.process import serving_process
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
#: What a clone holds that an install does not need.
_LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".*_cache", "tests", "bench", "build")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv into which the clone was pip-installed."""
    base = tmp_path_factory.mktemp("install")
    source = base / "clone"
    shutil.copytree(ROOT, source, ignore=_LEFT_OUT)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            str(source),
        ],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv / "bin"


def _clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH" and not key.startswith("BRIDGE_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.slow
def test_the_installed_console_script_prints_the_version(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(installed / "task-queue-bridge"), "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Task Queue Bridge {bridge.__version__}"


@pytest.mark.slow
def test_the_installed_bridge_serves_from_another_directory(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    env = _clean_env()
    command = [str(installed / "task-queue-bridge"), "serve", "--port", str(port)]
    with serving_process(command, cwd=tmp_path, env=env, port=port, log=tmp_path / "serve.log"):
        url = f"http://127.0.0.1:{port}"
        client = (
            "import base64, bridge, backends, sys\n"
            "from bridge.client import connect\n"
            f"api = connect({url!r})\n"
            "body = {'id': 'hello', 'payloadBase64': base64.urlsafe_b64encode(b'from-afar').decode()}\n"
            "api.tasks().insert(project='s~app', taskqueue='render', body=body).execute()\n"
            "task = api.tasks().get(project='s~app', taskqueue='render', task='hello').execute()\n"
            "print(base64.urlsafe_b64decode(task['payloadBase64']).decode(), bridge.__file__, backends.__file__)\n"
        )
        result = subprocess.run(
            [str(installed / "python"), "-c", client], capture_output=True, text=True, cwd=tmp_path, env=env
        )
        assert result.returncode == 0, result.stderr
        said, bridge_file, backends_file = result.stdout.split()
        assert said == "from-afar"
        for path in (bridge_file, backends_file):
            assert Path(path).is_relative_to(installed.parent), path  # the installed copy, not the clone
        with urllib.request.urlopen(f"{url}/console/", timeout=10) as page:
            html = page.read().decode()
        assert "render" in html and "console.css" in html
        with urllib.request.urlopen(f"{url}/console/static/console.css", timeout=10) as css:
            assert css.status == 200 and b".grid" in css.read()
        with urllib.request.urlopen(f"{url}/console/api/queues", timeout=10) as listing:
            assert [q["name"] for q in json.load(listing)["queues"]] == ["render"]
    start_line = next(line for line in (tmp_path / "serve.log").read_text().splitlines() if "Task Queue Bridge" in line)
    assert f"Task Queue Bridge {bridge.__version__}: backend memory:// answering" in start_line
    assert f"console http://127.0.0.1:{port}/console/" in start_line


#: What a worker that calls a bridge needs, and all that a plain install brings.
CLIENT_PACKAGES = {"google-api-python-client", "google-auth-httplib2", "httplib2"}
#: Packages of the server that the client must not load.
SERVER_MODULES = ("flask", "werkzeug", "gunicorn", "redis", "click", "fakeredis", "grpc", "yaml")


def _declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = [Requirement(line) for line in project["dependencies"]]
    return base, [Requirement(line) for line in project["optional-dependencies"]["server"]]


def _locked() -> dict[str, str]:
    """requirements.txt's pins: package -> version."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            [specifier] = requirement.specifier
            assert specifier.operator == "==", line
            pins[requirement.name.lower()] = specifier.version
    return pins


def test_the_lock_pins_every_declared_package_within_its_range() -> None:
    base, server = _declared()
    locked = _locked()
    for requirement in base + server:
        assert requirement.specifier, f"{requirement.name} needs a range"
        assert all(spec.operator != "==" for spec in requirement.specifier), requirement
        assert requirement.name.lower() in locked, f"{requirement.name} is not in requirements.txt"
        assert locked[requirement.name.lower()] in requirement.specifier, (requirement, locked[requirement.name])
    assert set(locked) == {requirement.name.lower() for requirement in base + server}
    assert {requirement.name for requirement in base} == CLIENT_PACKAGES


@pytest.mark.slow
def test_a_plain_install_requires_only_the_clients_packages(installed: Path) -> None:
    script = "import importlib.metadata, json; print(json.dumps(importlib.metadata.requires('task-queue-bridge')))"
    result = subprocess.run([str(installed / "python"), "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    required = [Requirement(line) for line in json.loads(result.stdout)]
    plain = {requirement.name for requirement in required if requirement.marker is None}
    assert plain == CLIENT_PACKAGES
    assert {requirement.name for requirement in required if requirement.marker is not None} >= {"flask", "gunicorn"}


@pytest.mark.slow
def test_importing_the_client_loads_nothing_of_the_server(installed: Path, tmp_path: Path) -> None:
    # The borrowed site-packages hold Flask and the rest, so only laziness keeps them out.
    script = (
        "import sys\n"
        "from bridge.client import connect\n"
        f"print(sorted(name for name in sys.modules if name.split('.')[0] in {SERVER_MODULES!r}))\n"
    )
    result = subprocess.run(
        [str(installed / "python"), "-c", script], capture_output=True, text=True, cwd=tmp_path, env=_clean_env()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_command_without_the_servers_packages_says_what_to_install(installed: Path, tmp_path: Path) -> None:
    # As if only the client's packages were installed: Flask cannot be imported.
    script = "import sys; sys.modules['flask'] = None; sys.argv[1:] = ['serve']; from bridge.__main__ import run; run()"
    result = subprocess.run(
        [str(installed / "python"), "-c", script], capture_output=True, text=True, cwd=tmp_path, env=_clean_env()
    )
    assert result.returncode == 1
    assert "pip install 'task-queue-bridge[server]'" in result.stderr and "Traceback" not in result.stderr
