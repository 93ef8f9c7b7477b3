"""The pieces of ``compat`` that need no endpoint: normalisation, comparison, the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge_tools.compat.compare import ABSENT, Difference, differences
from bridge_tools.compat.ledger import Ledger, LedgerError
from bridge_tools.compat.rules import At, Context, Generated, Same, SecondsOf, ZeroOrAbsent, normalise, render


def _context() -> Context:
    return Context(
        queue="q-a1", token="a1", fresh_queue=True, tolerance_us=500_000, events={"call": (10**16, 10**16 + 1000)}
    )


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        (str(10**16 + 60_000_400), "µs(call+60s)"),
        (10**16 + 60_000_400, "number µs(call+60s)"),
        (str(10**16 + 63_200_000), "µs(call+63.2s)"),
        (str(10**10), "<not µs since the epoch: 10000000000>"),
        ("soon", "<not an int64: 'soon'>"),
    ],
)
def test_a_timestamp_normalises_to_what_it_satisfies(value: Any, normalised: str) -> None:
    assert normalise(value, At("call", 60), _context()) == normalised


def test_generated_ids_bind_and_later_responses_must_repeat_them() -> None:
    ctx = _context()
    expected = [Generated("g1"), Generated("g2")]
    assert normalise(["x1", "x1"], expected, ctx) == ["{g1}", "<the same id as {g1}>"]
    assert normalise({"id": "x1", "queueName": "projects/p/taskqueues/q-a1"}, {"id": Same("g1")}, ctx) == {
        "id": "=g1",
        "queueName": "projects/p/taskqueues/{queue}",
    }


def test_a_generated_id_must_be_a_task_name_as_a_whole() -> None:
    assert normalise("x1\n", Generated("g1"), _context()) == "<not a task id: 'x1\\n'>"


def test_ledger_fields_are_globs_over_the_whole_name(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.toml"
    ledger.write_text('[[accept]]\nscenario = "stats"\nfield = "*.body.stats.oldestTask"\nreason = "r"\n')
    entries = Ledger.load(ledger)
    assert entries.accepts("stats", Difference("get.body.stats.oldestTask", "1", "2"))
    assert not entries.accepts("stats", Difference("get.body.stats.oldestTask2", "1", "2"))
    assert not entries.accepts("other", Difference("get.body.stats.oldestTask", "1", "2"))


def test_an_optional_rule_stands_for_a_missing_key() -> None:
    ctx = _context()
    expected = {"totalTasks": 0, "oldestTask": ZeroOrAbsent()}
    assert normalise({"totalTasks": 0}, expected, ctx) == render(expected, ctx)
    assert normalise({"totalTasks": 0, "oldestTask": "0"}, expected, ctx) == render(expected, ctx)
    assert normalise({"totalTasks": 0, "oldestTask": "7"}, expected, ctx)["oldestTask"] == "<not zero: '7'>"
    assert normalise({"totalTasks": 0, "oldestTask": 0}, expected, ctx)["oldestTask"] == "number 0"


def test_seconds_are_checked_against_the_bound_microseconds() -> None:
    ctx = _context()
    ctx.bound["a.eta"] = "1700000000999999"
    assert normalise("1700000000", SecondsOf("a.eta"), ctx) == "s(a.eta)"
    assert normalise("1700000001", SecondsOf("a.eta"), ctx) == "s(a.eta)+1s"
    assert normalise(1700000000, SecondsOf("a.eta"), ctx) == "number s(a.eta)"


def test_differences_are_strict_about_json_types_and_name_the_path() -> None:
    a = {"get": {"status": 200, "body": {"items": [{"retry_count": 1}], "kind": "x"}}}
    b = {"get": {"status": 200, "body": {"items": [{"retry_count": "1"}, {}]}}}
    assert list(differences(a, b)) == [
        Difference("get.body.items[0].retry_count", 1, "1"),
        Difference("get.body.items[1]", ABSENT, {}),
        Difference("get.body.kind", "x", ABSENT),
    ]
    assert list(differences({"n": 1}, {"n": 1.0})) == [Difference("n", 1, 1.0)]
    assert list(differences({"n": True}, {"n": 1})) == [Difference("n", True, 1)]


def test_a_ledger_entry_needs_a_reason_and_known_keys(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.toml"
    ledger.write_text('[[accept]]\nscenario = "*"\nfield = "*"\n')
    with pytest.raises(LedgerError, match="entry 1: 'reason' is required"):
        Ledger.load(ledger)
    ledger.write_text('[[accept]]\nscenario = "*"\nfield = "*"\nreason = "r"\nwhy = "typo"\n')
    with pytest.raises(LedgerError, match="unknown key"):
        Ledger.load(ledger)
    ledger.write_text("[[accept]\n")
    with pytest.raises(LedgerError, match="not valid TOML"):
        Ledger.load(ledger)
