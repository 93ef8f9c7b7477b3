"""The Pub/Sub backend's own tests: each on Google's emulator, under a prefix of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from backends.pubsub.backend import PubSubBackend
from tests.support.pubsub_emulator import PubSubEmulator

Opener = Callable[..., PubSubBackend]


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}-"


@pytest.fixture
def url(pubsub_emulator: PubSubEmulator, prefix: str) -> str:
    """A backend URL on the emulator, creating queues on first use."""
    return f"pubsub://projects/demo-app?emulator={pubsub_emulator.address}&create_queues=true&prefix={prefix}"


@pytest.fixture
def open_pubsub(url: str) -> Iterator[Opener]:
    """Opens backends on the test's prefix, as separate bridge processes would: nothing shared
    but the service. Keyword arguments replace the URL's query."""
    opened: list[PubSubBackend] = []

    def open_one(query: str | None = None) -> PubSubBackend:
        backend = PubSubBackend.from_url(url if query is None else f"{url.split('?')[0]}?{query}")
        backend.backoff = 0.001
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        backend.close()
