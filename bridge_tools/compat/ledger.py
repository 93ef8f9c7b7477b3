"""The ledger: differences that are known and accepted, each with its reason.

A TOML file of ``[[accept]]`` entries::

    [[accept]]
    scenario = "stats"                           # a scenario name, or "*" for every one
    field = "*.body.stats.leasedLastMinute"      # a field as the report names it; "*" matches anything
    reason = "Cloud Tasks does not count leases" # required: why this difference is fine
    # a = "1"                                    # optional: accept only this value on side A …
    # b = "<absent>"                             # … and this one on side B (the expectation, with one URL)

A difference that an entry matches is reported as accepted, with the entry's reason; any
other difference fails the run. An entry that matched nothing is reported, so that a
ledger does not keep excuses for differences that are gone.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge_tools.compat.compare import Difference, as_json

_KEYS = {"scenario", "field", "reason", "a", "b"}
_UNSET: Any = object()


class LedgerError(ValueError):
    """A ledger file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, eq=False)  # entries are told apart by identity: a and b may be lists
class Entry:
    scenario: str
    field: str
    reason: str
    a: Any = _UNSET
    b: Any = _UNSET

    def matches(self, scenario: str, difference: Difference) -> bool:
        if self.scenario not in ("*", scenario):
            return False
        if not _glob(self.field).fullmatch(difference.field):
            return False
        if self.a is not _UNSET and self.a != as_json(difference.a):
            return False
        return self.b is _UNSET or self.b == as_json(difference.b)

    def describe(self) -> dict[str, Any]:
        entry = {"scenario": self.scenario, "field": self.field, "reason": self.reason}
        entry.update({side: getattr(self, side) for side in ("a", "b") if getattr(self, side) is not _UNSET})
        return entry


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


@dataclass(frozen=True)
class Ledger:
    entries: tuple[Entry, ...] = ()
    source: str | None = None

    def accepts(self, scenario: str, difference: Difference) -> Entry | None:
        """The first entry that accepts ``difference``, if any."""
        return next((entry for entry in self.entries if entry.matches(scenario, difference)), None)

    @classmethod
    def load(cls, path: Path) -> Ledger:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise LedgerError(f"ledger {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise LedgerError(f"ledger {path}: not valid TOML: {exc}") from None
        extra = set(document) - {"accept"}
        if extra:
            raise LedgerError(f"ledger {path}: unknown top-level key(s) {sorted(extra)}; use [[accept]] tables")
        raw = document.get("accept", [])
        if not isinstance(raw, list):
            raise LedgerError(f"ledger {path}: 'accept' must be an array of tables ([[accept]])")
        return cls(tuple(_entry(path, number, item) for number, item in enumerate(raw, 1)), str(path))


def _entry(path: Path, number: int, item: Any) -> Entry:
    where = f"ledger {path}, entry {number}"
    if not isinstance(item, dict):
        raise LedgerError(f"{where}: must be a table")
    unknown = set(item) - _KEYS
    if unknown:
        raise LedgerError(f"{where}: unknown key(s) {sorted(unknown)}; the keys are {sorted(_KEYS)}")
    for key in ("scenario", "field", "reason"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise LedgerError(f"{where}: '{key}' is required and must be a non-empty string")
    return Entry(**item)
