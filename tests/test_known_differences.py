"""KNOWN_DIFFERENCES.md stays true: every row names a real test, with a reason."""

from __future__ import annotations

import re

from tests.support.known_differences import ROOT, read


def test_every_known_difference_names_a_test_that_exists_and_says_why() -> None:
    differences = read()
    assert differences, "KNOWN_DIFFERENCES.md has no table rows"
    for difference in differences:
        path, _, name = difference.test.partition("::")
        function = name.split("[", 1)[0]
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {re.escape(function)}\(", source, re.MULTILINE), f"no test {difference.test}"
        assert len(difference.reason) > 40, f"{difference.test}: say why the backend differs"


def test_no_test_is_listed_twice() -> None:
    tests = [(difference.backend, difference.test) for difference in read()]
    assert len(tests) == len(set(tests))
