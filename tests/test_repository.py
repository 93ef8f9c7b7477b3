"""The repository keeps its promises: CI runs the README's command, the code is linted and typed."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _first_code_block(text: str) -> list[str]:
    block = text.split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip()]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = _first_code_block((ROOT / "README.md").read_text())
    assert len(commands) == 2, "the README opens with two commands: run, and test"
    test_command = commands[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; it is in requirements-dev.txt")
    return found


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([_tool("ruff"), "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_finds_nothing() -> None:
    result = subprocess.run([_tool("mypy")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


#: What `python -m bridge serve` does before gunicorn forks: parse the command line, build
#: the app (whose backend it then closes); printed: the tools' modules that got imported.
_SERVE_WITHOUT_SERVING = """
import sys
from bridge.cli import main

serve = main.get_command(main.make_context("bridge", ["serve"]), "serve")
serve.make_context("serve", [])
from bridge import create_app
from bridge.settings import Settings

create_app(Settings()).extensions["bridge"].backend.close()
print(sorted(name for name in sys.modules if name.split(".")[0] == "bridge_tools"))
"""


def test_starting_the_server_imports_none_of_the_tools() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SERVE_WITHOUT_SERVING], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_tools_commands_are_reached_through_the_bridges_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()}
    queue_cli = {"queues", "tasks", "peek", "purge", "pause", "resume", "clear-tombstones", "dead-letters", "delete"}
    assert listed == {"compat", "hash-token", "serve", "smoke", "insert", "release", *queue_cli}


def _imports() -> dict[str, set[str]]:
    """module -> the project's modules it imports, anywhere in its code (lazy imports
    too), except under ``if TYPE_CHECKING:``."""
    files = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for package in ("bridge", "backends", "bridge_tools", "api_data")
        for path in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text())
        skipped = {
            id(node)
            for branch in ast.walk(tree)
            if isinstance(branch, ast.If) and ast.unparse(branch.test) == "TYPE_CHECKING"
            for statement in branch.body
            for node in ast.walk(statement)
        }
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in files else node.module
                    for alias in node.names
                )
        graph[module] = {target for target in targets if target in files and target != module}
    return graph


#: README's Layout, top to bottom: a unit may import the units of the layers below its
#: own; in the shared layer, also the others of that layer (the fronts and the backends
#: may not import each other). A module belongs to the longest unit that prefixes it.
LAYERS: list[tuple[str, ...]] = [
    ("bridge_tools",),
    ("bridge.__main__",),
    ("bridge.cli",),
    ("bridge.server",),
    ("bridge.app",),
    ("bridge.taskqueue", "bridge.cloudtasks", "bridge.console"),
    (
        "bridge.gate",
        "bridge.access",
        "bridge.ops",
        "bridge.settings",
        "bridge.errors",
        "bridge.entropy",
        "bridge.version",
    ),
    ("backends.redis", "backends.cloudtasks", "backends.pubsub"),
    ("backends", "api_data"),
]
SHARED = next(layer for layer in LAYERS if "bridge.settings" in layer)
#: The workers' client: it imports nothing of the project, and only the tools import it.
CLIENT = "bridge.client"
def _unit(module: str) -> str:
    if module == "bridge":
        return "bridge.app"  # the package's __init__ hands out the app factory
    units = [unit for layer in LAYERS for unit in layer] + [CLIENT]
    found = [unit for unit in units if module == unit or module.startswith(unit + ".")]
    assert found, f"{module} belongs to no unit of LAYERS: place it in README's Layout and here"
    return max(found, key=len)


def _layer(unit: str) -> int:
    return next(number for number, layer in enumerate(LAYERS) if unit in layer)


def test_the_packages_import_each_other_one_way_and_without_cycles() -> None:
    graph = _imports()
    against = []
    for module, targets in graph.items():
        for target in targets:
            source, sink = _unit(module), _unit(target)
            if source == sink:
                continue
            if CLIENT in (source, sink):
                allowed = sink == CLIENT and source == "bridge_tools"
            else:
                below = _layer(sink) > _layer(source)
                allowed = below or (source in SHARED and sink in SHARED)
            if not allowed:
                against.append(f"{module} -> {target}")
    assert against == []

    def cycle_from(module: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if module in path:
            return path[path.index(module) :] + (module,)
        for target in sorted(graph.get(module, ())):
            # A package's __init__ re-exporting a submodule is no cycle of the code's own.
            if target != module.rpartition(".")[0] and (found := cycle_from(target, (*path, module))):
                return found
        return None

    for module in graph:
        assert cycle_from(module, ()) is None


#: A path in backticks (``x`` too) or a Markdown link's target, of the kinds of files this
#: repository holds; and any name of a Markdown file, quoted or not.
_QUOTED = re.compile(r"`{1,2}([^`\s]+\.(?:py|md|lua|toml|ya?ml))(?:[:#][^`]*)?`{1,2}")
_LINKED = re.compile(r"\]\(([^)\s#]+\.(?:py|md|lua|toml|ya?ml))(?:#[^)]*)?\)")
_DOCUMENT = re.compile(r"(?<![\w./`<-])([\w./-]+\.md)\b")
#: Files named in the text that are not this repository's, and why that is right.
_NOT_OURS = {
    "queue.yaml": "App Engine's name for a user's queue file",
    "taskqueue.py": "the App Engine SDK's client, cited as a source of the wire contract",
    "taskqueue_stub.py": "the App Engine SDK's pull-queue implementation, the reference for v1 semantics",
    "queueinfo.py": "the App Engine SDK's queue.yaml validation, cited where the bridge follows it",
}
#: The App Engine SDK's files, named by their path inside the SDK (tests/support/appengine_stub.py).
_SDK = "google/appengine/"


def _references(text: str) -> Iterator[tuple[int, str]]:
    for pattern in (_QUOTED, _LINKED, _DOCUMENT):
        for found in pattern.finditer(text):
            name = found.group(1)
            # URLs, globs (tests/test_*.py) and placeholders (tests/<file>.py) name no file.
            if "://" not in name and not any(mark in name for mark in "*<{~"):
                yield text.count("\n", 0, found.start()) + 1, name


def test_every_file_the_repository_names_is_in_it() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = [ROOT / line for line in tracked.splitlines()]
    names = {path.name for path in paths}
    missing = []
    for path in paths:
        if path.suffix in (".png", ".json") or not path.is_file():
            continue
        for line, name in _references(path.read_text()):
            here = (ROOT / name).exists() or (path.parent / name).exists() or ("/" not in name and name in names)
            if not here and name not in _NOT_OURS and not name.startswith(_SDK):
                missing.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert missing == []
