"""The three fronts stand side by side: none imports another, and what they share lives below them."""

from __future__ import annotations

from tests.test_repository import _imports

FRONTS = ("bridge.taskqueue", "bridge.cloudtasks", "bridge.console")
#: Modules every front uses: they may import no front.
SHARED: tuple[str, ...] = ("bridge.gate", "bridge.access", "bridge.ops", "bridge.settings", "bridge.errors")
SHARED += ("bridge.entropy", "backends")


def _front(module: str) -> str | None:
    return next((front for front in FRONTS if module == front or module.startswith(front + ".")), None)


def test_no_front_imports_another_front() -> None:
    crossing = sorted(
        (module, target)
        for module, targets in _imports().items()
        for target in targets
        if _front(module) and _front(target) and _front(module) != _front(target)
    )
    assert crossing == []


def test_what_the_fronts_share_imports_no_front() -> None:
    upward = sorted(
        (module, target)
        for module, targets in _imports().items()
        if module.startswith(SHARED)
        for target in targets
        if _front(target)
    )
    assert upward == []
