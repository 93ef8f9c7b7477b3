"""The suites' cases a backend declares it cannot do are skipped, and only those.

A backend says what it lacks in ``Backend.supports`` and refuses it with Unsupported
naming the feature (``Unsupported.feature``). The harness of such a backend records
every refusal (`recording`); a test of the suites (one with a ``variant`` parameter)
that fails after its backend refused something the backend declares unsupported is
reported as skipped, naming what was refused. A test
that reached no refusal must pass, and a refusal of a feature the backend claims to
support stays a failure. So the suites run every case a backend can do, whichever
test file it is in, and skip exactly the ones it declares it cannot.

Refusals are kept for the test that runs (the suite runs one test at a time), also when
they happen in a bridge's request thread: a bridge in the test's process calls the
harness's backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any

import pytest

from backends.base import VERBS, Backend
from backends.errors import Unsupported

#: The refusals of the test that runs, with the backend that made each.
_REFUSED: list[tuple[Backend, Unsupported]] = []
#: The contract's verbs: what a test can reach a backend through.
_VERBS = VERBS


def recording(backend: Backend) -> Backend:
    """``backend``, whose verbs remember each Unsupported they raise for the running test."""
    for name in _VERBS:
        verb: Callable[..., Any] = getattr(backend, name)

        @functools.wraps(verb)
        def recorded(*args: Any, __verb: Callable[..., Any] = verb, **kwargs: Any) -> Any:
            try:
                return __verb(*args, **kwargs)
            except Unsupported as exc:
                _REFUSED.append((backend, exc))
                raise

        setattr(backend, name, recorded)
    return backend


def declared(refusals: list[tuple[Backend, Unsupported]]) -> list[str]:
    """The features refused that their backend declares unsupported; empty when any
    refusal is of a feature the backend claims (that is a bug, not a skip)."""
    features = []
    for backend, exc in refusals:
        if exc.feature is None or exc.feature in backend.supports:
            return []
        features.append(exc.feature)
    return sorted(set(features))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        _REFUSED.clear()  # what the fixtures were refused is not the test's


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A failure after declared refusals becomes a skip here, before pytest reports it:
    a failure's report renders its whole traceback, which the suite's few hundred skips
    would pay for (half a minute of CPU across the suite) only to throw away."""
    try:
        return (yield)
    except Exception:
        # Only the suites that run on every backend (a ``variant`` parameter) skip; a test
        # of one backend that meets a refusal has asked for it.
        callspec = getattr(item, "callspec", None)
        features = declared(_REFUSED) if _REFUSED and "variant" in getattr(callspec, "params", {}) else []
        if not features:
            raise
        reason = f"{type(_REFUSED[0][0]).__name__} declares it cannot: {', '.join(features)}"
        raise pytest.skip.Exception(reason, _use_item_location=True) from None
