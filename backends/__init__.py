"""Storage backends, chosen by the scheme of a URL.

    memory://                              fakeredis inside this process (the default)
    redis://[:password@]host[:port][/db]   a Redis server
    rediss://…                             the same over TLS
    redis+cluster://host:port              a Redis Cluster (any one node)
    cloudtasks://projects/P/locations/L    Google Cloud Tasks v2beta2 pull queues

A backend module is imported only when its scheme is chosen, so a laptop that never
talks to Cloud Tasks never imports the Google client.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from backends.base import Backend

#: scheme -> "module:Class"; each class has ``from_url(url, **options)``.
BACKENDS: dict[str, str] = {
    "memory": "backends.memory:MemoryBackend",
    "redis": "backends.redis_backend:RedisBackend",
    "rediss": "backends.redis_backend:RedisBackend",
    "redis+cluster": "backends.redis_backend:RedisBackend",
    "cloudtasks": "backends.cloudtasks:CloudTasksBackend",
}


class UnknownBackend(ValueError):
    pass


def backend_class(url: str) -> type[Backend]:
    """The class serving ``url``; UnknownBackend names the schemes there are."""
    scheme = urlsplit(url).scheme
    try:
        target = BACKENDS[scheme]
    except KeyError:
        known = ", ".join(f"{name}://" for name in BACKENDS)
        raise UnknownBackend(f"unknown backend {url!r}: the URL must start with one of {known}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def open_backend(url: str, **options: Any) -> Backend:
    """Build the backend for ``url``; options are those of ``Backend.from_url``."""
    return backend_class(url).from_url(url, **options)
