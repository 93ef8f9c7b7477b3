"""Running the battery: each scenario on every endpoint at once, then judged.

With two endpoints a scenario runs on both in parallel threads (so that both see the
same moments of real time), each on its own fresh queue; their normalised observations
are compared with each other. With one endpoint they are compared with the scenario's
expectations. Every session cleans up after itself in its own thread, also when its
scenario failed half way or the run is interrupted (Ctrl-C stops the scenarios at their
next call, then waits for the cleanups).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from bridge_tools.compat.compare import Difference, differences
from bridge_tools.compat.ledger import Ledger
from bridge_tools.compat.options import Options
from bridge_tools.compat.report import Finding, Report, ScenarioResult
from bridge_tools.compat.scenarios import Scenario
from bridge_tools.compat.session import LeasePacer, Session, SetupError

SIDES = ("A", "B")


def run(
    urls: Sequence[str],
    scenarios: Iterable[Scenario],
    *,
    ledger: Ledger | None = None,
    options: Options | None = None,
    progress: Callable[[Report, ScenarioResult], None] | None = None,
) -> Report:
    """Run ``scenarios`` against one or two endpoints and judge them."""
    if len(urls) not in (1, 2):
        raise ValueError("compat takes one endpoint (checked against the expectations) or two (compared)")
    options = options or Options()
    shown = {**asdict(options), "token": "(sent)" if options.token else None}
    report = Report(dict(zip(SIDES, urls, strict=False)), shown, ledger or Ledger())
    pacers = {side: LeasePacer() for side in report.endpoints}
    with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="compat") as pool:
        for scenario in scenarios:
            sessions = [Session(url, side.lower(), options, pacers[side]) for side, url in report.endpoints.items()]
            started = time.monotonic()
            futures = [pool.submit(_play, scenario, session) for session in sessions]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for session in sessions:
                    session.abort()
                raise
            result = _judge(report, scenario, sessions, time.monotonic() - started)
            report.results.append(result)
            if progress is not None:
                progress(report, result)
    return report


def _play(scenario: Scenario, session: Session) -> None:
    try:
        session.check_queue()
        scenario.run(session)
    except SetupError as exc:
        session.failure = f"setup: {exc}"
        session.advice = exc.advice
    except Exception as exc:  # the scenario stops here; what it saw so far is still judged
        session.failure = f"{type(exc).__name__}: {exc}"
    finally:
        session.cleanup()
        session.close()


def _record(session: Session, what: str) -> dict[str, Any]:
    return {label: getattr(observation, what) for label, observation in session.observations.items()}


def _judge(report: Report, scenario: Scenario, sessions: list[Session], seconds: float) -> ScenarioResult:
    sides = dict(zip(SIDES, sessions, strict=False))
    found: Iterable[Difference]
    if len(sessions) == 2:
        found = differences(_record(sessions[0], "normalised"), _record(sessions[1], "normalised"))
        deviations = {
            side: [_finding(report, scenario, d, use=False) for d in _departures(session)]
            for side, session in sides.items()
        }
        observations = {side: _record(session, "normalised") for side, session in sides.items()}
    else:
        found = _departures(sessions[0])
        deviations = {}
        observations = {"A": _record(sessions[0], "normalised"), "expected": _record(sessions[0], "expected")}
    return ScenarioResult(
        name=scenario.name,
        description=scenario.description,
        findings=[_finding(report, scenario, difference) for difference in found],
        seconds=seconds,
        errors={side: session.failure for side, session in sides.items() if session.failure},
        advice=sorted({session.advice for session in sessions if session.advice}),
        cleanup={side: {"deleted": s.deleted, "problems": s.cleanup_problems} for side, s in sides.items()},
        observations=observations,
        deviations=deviations,
        methods=sorted(set().union(*(session.methods for session in sessions))),
    )


def _departures(session: Session) -> Iterable[Difference]:
    return differences(_record(session, "normalised"), _record(session, "expected"))


def _finding(report: Report, scenario: Scenario, difference: Difference, *, use: bool = True) -> Finding:
    entry = report.ledger.accepts(scenario.name, difference)
    if entry is not None and use:
        report.used_entries.add(entry)
    return Finding(difference.field, difference.a, difference.b, entry.reason if entry else None)
