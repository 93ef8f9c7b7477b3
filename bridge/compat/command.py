"""``python -m bridge compat``: the battery as a command, printing as it goes.

The click command in `bridge.cli` only declares the options; this module does the work
and returns the exit status: 0 when nothing differs without the ledger's leave, 1
otherwise. Bad arguments raise `UsageError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from backends.limits import QUEUE_NAME
from bridge.compat.ledger import Ledger, LedgerError
from bridge.compat.options import Options
from bridge.compat.report import Report, ScenarioResult
from bridge.compat.runner import run
from bridge.compat.scenarios import SCENARIOS

#: Leaves room in a queue name for the run's token.
MAX_QUEUE_PREFIX = 80


class UsageError(ValueError):
    """Arguments the command cannot work with; the message says what to change."""


def command(
    urls: Sequence[str],
    *,
    options: Options,
    names: Sequence[str] = (),
    ledger_path: Path | None = None,
    json_path: Path | None = None,
    list_only: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    if list_only:
        for scenario in SCENARIOS.values():
            echo(f"{scenario.name:<24} {scenario.description}")
        return 0
    if len(urls) not in (1, 2):
        raise UsageError("give one endpoint URL (checked against the expectations) or two (compared)")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"{url!r} is not an endpoint: it must start with http:// or https://")
    prefix = options.queue_prefix
    if not QUEUE_NAME.matches(prefix) or len(prefix) > MAX_QUEUE_PREFIX:
        raise UsageError(
            f"--queue-prefix {prefix!r}: at most {MAX_QUEUE_PREFIX} characters of a queue name, "
            f"which is {QUEUE_NAME.described}"
        )
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise UsageError(f"no scenario {', '.join(map(repr, unknown))}; --list names them")
    try:
        ledger = Ledger.load(ledger_path) if ledger_path else Ledger()
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    chosen = [SCENARIOS[name] for name in names] if names else list(SCENARIOS.values())

    if len(urls) == 2:
        echo(f"comparing A {urls[0]} with B {urls[1]}")
    else:
        echo(f"checking {urls[0]} against the expectations")

    def progress(report: Report, result: ScenarioResult) -> None:
        echo(report.line(result))

    report = run(urls, chosen, ledger=ledger, options=options, progress=progress)
    echo(report.summary())
    if json_path is not None:
        report.write_json(json_path)
    return 0 if report.ok else 1
