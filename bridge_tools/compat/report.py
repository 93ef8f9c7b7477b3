"""What a run found: one result per scenario, shown as terminal lines and as JSON.

A scenario is **same** when nothing differs, **accepted** when every difference is one
the ledger accepts, **differs** when one is not, and **error** when a scenario could not
run to its end on an endpoint (its queue missing or refused there, a response it could
not read). Only "same" and "accepted" let the run succeed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge_tools.compat.compare import ABSENT, as_json, shown
from bridge_tools.compat.ledger import Entry, Ledger

#: Strings in the JSON report's observations are cut to this length.
JSON_STRING_CHARS = 200
_STATUS_WIDTH = 9
_NAME_WIDTH = 24


@dataclass(frozen=True)
class Finding:
    """One difference, and the ledger's reason when the ledger accepts it."""

    field: str
    a: Any
    b: Any
    accepted: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "a": as_json(self.a), "b": as_json(self.b), "accepted": self.accepted}


@dataclass
class ScenarioResult:
    name: str
    description: str
    findings: list[Finding]
    seconds: float
    #: side ("A", "B") -> what stopped the scenario there.
    errors: dict[str, str] = field(default_factory=dict)
    #: side -> {"deleted": n, "problems": [...]}.
    cleanup: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: side -> label -> normalised observation (and "expected" in single mode).
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: With two endpoints: side -> where it departs from the expectations.
    deviations: dict[str, list[Finding]] = field(default_factory=dict)
    #: The API methods (Discovery ids) the scenario called.
    methods: list[str] = field(default_factory=list)
    #: What to change, when the scenario's setup failed on a side.
    advice: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.errors:
            return "error"
        if any(finding.accepted is None for finding in self.findings):
            return "differs"
        return "accepted" if self.findings else "same"

    @property
    def first(self) -> Finding | None:
        """The finding to show: the first unexplained one, else the first accepted one."""
        unexplained = [finding for finding in self.findings if finding.accepted is None]
        shown = unexplained or self.findings
        return shown[0] if shown else None


@dataclass
class Report:
    endpoints: dict[str, str]
    options: dict[str, Any]
    ledger: Ledger
    results: list[ScenarioResult] = field(default_factory=list)
    used_entries: set[Entry] = field(default_factory=set)

    @property
    def single(self) -> bool:
        return len(self.endpoints) == 1

    @property
    def ok(self) -> bool:
        return all(result.status in ("same", "accepted") for result in self.results)

    @property
    def unused_entries(self) -> list[Entry]:
        return [entry for entry in self.ledger.entries if entry not in self.used_entries]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("same", "accepted", "differs", "error"), 0)
        for result in self.results:
            counts[result.status] += 1
        return counts

    # -- the terminal -------------------------------------------------------------------

    def line(self, result: ScenarioResult) -> str:
        """One line for ``result`` (and indented lines for errors and cleanup trouble)."""
        head = f"{result.status:<{_STATUS_WIDTH}} {result.name:<{_NAME_WIDTH}}"
        lines = [head]
        errors = [f"{side}: {message}" for side, message in result.errors.items()]
        finding = result.first
        if errors:
            # What stopped the scenario explains the differences that follow from it.
            lines[0] += " " + errors[0]
        elif finding is not None:
            a_name, b_name = ("got", "expected") if self.single else ("A", "B")
            lines[0] += f" {finding.field}: {a_name} {shown(finding.a)}, {b_name} {shown(finding.b)}"
            if finding.accepted:
                lines[0] += f" (accepted: {finding.accepted})"
            more = len(result.findings) - 1
            if more:
                lines[0] += f" [+{more} more]"
        elif result.status == "same" and not self.single:
            shared = [found for found in result.deviations.values() if found]
            if len(shared) == len(result.deviations):
                first = shared[0][0]
                lines[0] += f" (both depart from the expectation: {first.field} is {shown(first.a)}, "
                lines[0] += f"expected {shown(first.b)})"
        indent = " " * (_STATUS_WIDTH + 1)
        lines.extend(indent + error for error in errors[1:])
        for side, cleanup in result.cleanup.items():
            for problem in cleanup["problems"]:
                lines.append(f"{indent}cleanup {side}: {problem}")
        return "\n".join(line.rstrip() for line in lines)

    def summary(self) -> str:
        counts = self.counts()
        total = sum(counts.values())
        parts = [f"{counts['same']} same", f"{counts['accepted']} accepted", f"{counts['differs']} differ"]
        if counts["error"]:
            parts.append(f"{counts['error']} failed to run")
        lines = [f"{total} scenarios: {', '.join(parts)}"]
        for entry in self.unused_entries:
            lines.append(f"ledger entry matched nothing: scenario {entry.scenario!r}, field {entry.field!r}")
        versus = "from the expectations" if self.single else "between the endpoints"
        advice = dict.fromkeys(line for result in self.results for line in result.advice)
        lines.extend(f"the battery could not set up its queue; to fix: {line}" for line in advice)
        if not self.ok:
            differing = [result.name for result in self.results if result.status == "differs"]
            failed = [result.name for result in self.results if result.status == "error"]
            if differing:
                lines.append(f"UNEXPLAINED DIFFERENCES {versus}: {', '.join(differing)}")
            if failed:
                lines.append(f"NOT CHECKED, the scenario could not run: {', '.join(failed)}")
        elif counts["accepted"]:
            lines.append(f"no unexplained differences {versus} ({counts['accepted']} scenarios with accepted ones)")
        else:
            lines.append(f"no differences {versus}")
        return "\n".join(lines)

    # -- JSON -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": "single" if self.single else "pair",
            "endpoints": self.endpoints,
            "options": self.options,
            "ledger": self.ledger.source,
            "ok": self.ok,
            "counts": self.counts(),
            "scenarios": [
                {
                    "name": result.name,
                    "description": result.description,
                    "status": result.status,
                    "seconds": round(result.seconds, 3),
                    "methods": result.methods,
                    "differences": [finding.to_json() for finding in result.findings],
                    "errors": result.errors,
                    "advice": result.advice,
                    "cleanup": result.cleanup,
                    "deviations": {side: [f.to_json() for f in found] for side, found in result.deviations.items()},
                    "observations": _cut(result.observations),
                }
                for result in self.results
            ],
            "unused_ledger_entries": [entry.describe() for entry in self.unused_entries],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _cut(value: Any) -> Any:
    if value is ABSENT:
        return as_json(value)
    if isinstance(value, str) and len(value) > JSON_STRING_CHARS:
        return f"{value[:JSON_STRING_CHARS]}… ({len(value)} chars)"
    if isinstance(value, dict):
        return {key: _cut(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut(item) for item in value]
    return value
