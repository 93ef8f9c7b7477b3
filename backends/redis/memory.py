"""The embedded default: the Redis backend on an in-process fakeredis server.

URL: ``memory://`` (no options). Every Lua script and every semantic is the Redis
backend's own; only the connection differs. Tasks live as long as the process and are
visible to that process alone, so the server refuses to run it with several workers
(its entry in `backends.BACKENDS` says so).
"""

from __future__ import annotations

import fakeredis

from backends.base import DEFAULT_TOMBSTONE_SECONDS
from backends.redis.backend import DEFAULT_PREFIX, RedisBackend
from backends.redis.outages import Endpoint


class MemoryBackend(RedisBackend):
    @classmethod
    def from_url(cls, url: str, *, tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS) -> MemoryBackend:
        if url.rstrip("/") != "memory:":
            raise ValueError(f"memory:// takes no host or options, got {url!r}")
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return cls(client, prefix=DEFAULT_PREFIX, tombstone_seconds=tombstone_seconds, endpoint=Endpoint("memory://"))
