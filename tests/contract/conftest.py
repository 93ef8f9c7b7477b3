"""The contract suite runs on every backend; the HTTP suite's token variant is not one."""

from __future__ import annotations

import pytest

from backends.base import Backend
from tests.support.harness import BACKENDS, Harness, Variant


@pytest.fixture(params=BACKENDS)
def variant(request: pytest.FixtureRequest) -> Variant:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def backend(harness: Harness) -> Backend:
    return harness.backend
