"""``python -m bridge compat``: the battery as a command, printing as it goes.

`compat` is the click command (`bridge.cli` loads it when called); `command` does the
work and returns the exit status: 0 when nothing differs without the ledger's leave, 1
otherwise (a scenario that could not set up its queue included), 2 when an endpoint
does not answer (checked before the battery, within `REACH_TIMEOUT`). Bad arguments
raise `UsageError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import httplib2

from backends.limits import QUEUE_NAME
from bridge.client import authorized_http, discovery_url
from bridge_tools.compat.ledger import Ledger, LedgerError
from bridge_tools.compat.options import (
    DEFAULT_CLOCK_TOLERANCE,
    DEFAULT_PROJECT,
    DEFAULT_QUEUE_PREFIX,
    DEFAULT_TIMEOUT,
    Options,
)
from bridge_tools.compat.report import Report, ScenarioResult
from bridge_tools.compat.runner import run
from bridge_tools.compat.scenarios import SCENARIOS
from bridge_tools.options import token_option

#: Leaves room in a queue name for the run's token.
MAX_QUEUE_PREFIX = 80
#: Seconds an endpoint has to answer the check made before the battery.
REACH_TIMEOUT = 2.0
#: The exit status when an endpoint does not answer.
UNREACHABLE = 2
#: The Cloud Tasks backend's count of leases answered empty because of its rate limit.
THROTTLED_METRIC = "bridge_cloudtasks_leases_throttled_total"


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

    with ThreadPoolExecutor(len(urls)) as pool:
        problems = [problem for problem in pool.map(lambda url: unreachable(url, options.token), urls) if problem]
    if problems:
        for problem in problems:
            echo(problem)
        return UNREACHABLE

    if len(urls) == 2:
        echo(f"comparing A {urls[0]} with B {urls[1]}")
    else:
        echo(f"checking {urls[0]} against the expectations")

    def progress(report: Report, result: ScenarioResult) -> None:
        echo(report.line(result))

    throttled_before = [throttled_leases(url, options.token) for url in urls]
    report = run(urls, chosen, ledger=ledger, options=options, progress=progress)
    echo(report.summary())
    for side, url, before in zip("AB", urls, throttled_before, strict=False):
        after = throttled_leases(url, options.token)
        if before is not None and after is not None and after > before:
            echo(
                f"{side} {url}: Cloud Tasks refused {after - before:g} lease call(s) for its rate during the run, "
                f"answered with no tasks ({THROTTLED_METRIC} in /metrics)"
            )
    if json_path is not None:
        report.write_json(json_path)
    return 0 if report.ok else 1


def throttled_leases(url: str, token: str | None) -> float | None:
    """How many leases the bridge at ``url`` answered empty because Cloud Tasks throttled
    them, as its /metrics counts them (0 on other backends); None without /metrics (not
    a bridge, or /metrics behind other credentials)."""
    http = authorized_http(token, timeout=REACH_TIMEOUT)
    try:
        response, content = http.request(url.rstrip("/") + "/metrics", "GET")
    except (OSError, httplib2.HttpLib2Error):
        return None
    finally:
        http.close()
    if response.status != 200:
        return None
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in content.decode("utf-8", "replace").splitlines()
        if line.startswith(THROTTLED_METRIC + "{")
    ]
    return sum(counts)


def unreachable(url: str, token: str | None) -> str | None:
    """Why ``url`` cannot be checked (it does not answer, or serves no Discovery document); None if it can."""
    address = discovery_url(url).format(api="taskqueue", apiVersion="v1beta2")
    http = authorized_http(token, timeout=REACH_TIMEOUT)
    try:
        response, _ = http.request(address, "GET")
    except (OSError, httplib2.HttpLib2Error) as exc:
        return f"cannot reach {url}: {type(exc).__name__}: {exc}"
    finally:
        http.close()
    if response.status != 200:
        return f"{url} answers, but not as a bridge: GET {address} gave HTTP {response.status}"
    return None


@click.command()
@click.argument("urls", nargs=-1, metavar="URL_A [URL_B]")
@click.option("--project", default=DEFAULT_PROJECT, show_default=True, help="Project (app id) the calls name.")
@click.option(
    "--queue-prefix", default=DEFAULT_QUEUE_PREFIX, show_default=True, help="Start of each fresh queue's name."
)
@click.option("--queue", help="Run every scenario on this existing, empty queue (targets that cannot create queues).")
@click.option("--ledger", type=click.Path(path_type=Path, dir_okay=False), help="TOML file of accepted differences.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a JSON report here.")
@click.option("--scenario", "names", multiple=True, help="Run only this scenario (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="Name the scenarios and stop.")
@click.option(
    "--clock-tolerance",
    type=float,
    default=DEFAULT_CLOCK_TOLERANCE,
    show_default=True,
    help="Seconds of clock skew allowed.",
)
@click.option(
    "--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="Seconds to wait for one response."
)
@token_option
def compat(urls: tuple[str, ...], ledger: Path | None, json_path: Path | None, **options: Any) -> None:
    """Check one endpoint against the expectations, or compare two, scenario by scenario."""
    names, list_only = options.pop("names"), options.pop("list_only")
    try:
        status = command(
            urls,
            options=Options(**options),
            names=names,
            ledger_path=ledger,
            json_path=json_path,
            list_only=list_only,
            echo=click.echo,
        )
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    raise SystemExit(status)
