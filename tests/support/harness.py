"""One backend under test, with a clock the test can move on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from backends.base import Backend
from backends.memory import MemoryBackend
from backends.redis_backend import RedisBackend


@dataclass(frozen=True)
class Variant:
    """What a test runs on: a backend, and whether the bridges it starts ask for tokens."""

    backend: str
    auth: str = "none"


@dataclass
class Harness:
    name: str
    url: str
    backend: Backend

    def advance(self, seconds: float) -> None:
        """Move the backend's clock on, as if ``seconds`` had passed."""
        assert isinstance(self.backend, RedisBackend)
        self.backend.clock_shift_us += int(seconds * 1_000_000)

    def close(self) -> None:
        self.backend.close()


def memory_harness(**options: int) -> Harness:
    return Harness("memory", "memory://", MemoryBackend.from_url("memory://", **options))


def redis_harness(server_url: str, **options: int) -> Harness:
    # Each harness has its own key prefix, so tests sharing one server never meet.
    url = f"{server_url}?prefix=t{uuid.uuid4().hex[:12]}"
    return Harness("redis", url, RedisBackend.from_url(url, **options))
