"""Fixtures of the Cloud Tasks tests: the fake service, and backends and bridges on it.

These tests need grpcio and google-cloud-tasks: without them they are not collected
on a laptop (the contract suite's cloudtasks cases show the skip), and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")

try:
    import google.cloud.tasks_v2beta2  # noqa: F401
    import grpc  # noqa: F401
except ImportError:
    if CI:
        raise
    collect_ignore_glob = ["test_*.py"]

if TYPE_CHECKING:
    from backends.cloudtasks.backend import CloudTasksBackend
    from tests.support.cloudtasks_fake import FakeCloudTasks

LOCATION = "projects/demo-app/locations/us-central1"
QUEUE_NAME = f"{LOCATION}/queues/work"


@pytest.fixture
def fake() -> Iterator[FakeCloudTasks]:
    from tests.support.cloudtasks_fake import FakeCloudTasks

    service = FakeCloudTasks().start()
    yield service
    service.stop()


@pytest.fixture
def open_ct(fake: FakeCloudTasks) -> Iterator[Callable[..., CloudTasksBackend]]:
    """Opens Cloud Tasks backends on the fake: ``open_ct("create_queues=true", **from_url options)``."""
    from backends.cloudtasks.backend import CloudTasksBackend

    opened: list[CloudTasksBackend] = []

    def open_one(query: str = "", **options: Any) -> CloudTasksBackend:
        url = f"cloudtasks://{LOCATION}" + (f"?{query}" if query else "")
        backend = CloudTasksBackend.from_url(url, endpoint=fake.address, **options)
        backend.backoff = 0.0
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        backend.close()


@pytest.fixture
def ct(open_ct: Callable[..., CloudTasksBackend]) -> CloudTasksBackend:
    """A backend on the fake that creates its queues, as the contract suite's does."""
    return open_ct("create_queues=true")
