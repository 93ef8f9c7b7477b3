"""The backends the suites run on: one registry entry per backend variant, and the
harness a test gets from it (the backend, its URL, and a clock the test can move on).

`REGISTRY` names every variant; `BACKENDS` makes one pytest parameter of each, with its
marks and its id (``pytest -m redis``, ``-k cloudtasks``). Both contract suites run on
every entry: the backend-level one (``tests/contract/``) and, with the variants of
tests/conftest.py added (token auth, Google's document, the production worker), the
HTTP one. A name that is not in the registry fails the test (`open_variant`); nothing
falls back to another backend.

Adding a backend is one entry, as ``pubsub`` shows. Write an opener::

    def _open_pubsub(request: pytest.FixtureRequest, options: dict[str, Any]) -> Harness:
        emulator = request.getfixturevalue("pubsub_emulator")  # a session fixture of tests/conftest.py
        backend = PubSubBackend.from_url(url, **options)
        return Harness("pubsub", url, backend, move_clock)

and add ``"pubsub": Entry(_open_pubsub, (pytest.mark.pubsub,))`` to `REGISTRY` (and the
mark to pyproject.toml's ``markers``). ``options`` are ``from_url``'s keyword arguments
(``tombstone_seconds``). ``move_clock(us)`` must move the backend's own notion of now
by ``us`` microseconds (a shift the backend adds to its clock, or its fake service's
clock); a backend that cannot be told the time cannot pass the contract's expiry tests,
which then belong in KNOWN_DIFFERENCES.md. Services the backend needs are started by
session fixtures (each xdist worker starts its own, on free ports) and skip on a laptop
without them, fail with CI=true (``unavailable`` in tests/conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from backends.base import DEFAULT_TOMBSTONE_SECONDS, Backend
from backends.redis.backend import RedisBackend
from backends.redis.memory import MemoryBackend
from bridge.access.queues import QueueConfig, QueueRegistry

if TYPE_CHECKING:
    from tests.support.cloudtasks_fake import FakeCloudTasks

#: The Cloud Tasks project and location the contract suite's bridge proxies to.
CLOUDTASKS_LOCATION = "projects/demo-app/locations/us-central1"


@dataclass(frozen=True)
class Variant:
    """What a test runs on: a backend of `REGISTRY`, whether the bridges it starts ask for
    tokens, the document their clients are built from, and the server that serves them."""

    backend: str
    auth: str = "none"
    #: The document clients are built from: the one the bridge serves, or "google" (the
    #: facts of Google's own document, tests/support/google_facts.py).
    discovery: str = "served"
    #: "development": werkzeug's server in the test's process; "production": gunicorn
    #: with the bridge's own worker, in a process of its own (tests/support/production.py).
    server: str = "development"


@dataclass
class Harness:
    name: str
    url: str
    backend: Backend
    #: Moves the clock of the backend's storage on by µs.
    move_clock: Callable[[int], None]
    #: Called once the backend is closed (stops the services the harness started).
    on_close: list[Callable[[], None]] = field(default_factory=list)
    #: The fake Cloud Tasks service behind a cloudtasks harness.
    fake: FakeCloudTasks | None = None
    #: Gives the server behind the backend the bridge's queue.yaml too (cloudtasks-bridge),
    #: as a deployment gives the emulator and the proxy the same file.
    use_queues: Callable[[Path], None] | None = None

    def advance(self, seconds: float) -> None:
        """Move the backend's clock on, as if ``seconds`` had passed."""
        self.advance_us(int(seconds * 1_000_000))

    def advance_us(self, us: int) -> None:
        self.move_clock(us)

    def close(self) -> None:
        self.backend.close()
        for stop in self.on_close:
            stop()


def _shifting(backend: RedisBackend) -> Callable[[int], None]:
    """The clock of a Redis backend: a shift it adds to the server's TIME in every script."""

    def move_clock(us: int) -> None:
        backend.clock_shift_us += us

    return move_clock


def memory_harness(**options: int) -> Harness:
    backend = MemoryBackend.from_url("memory://", **options)
    return Harness("memory", "memory://", backend, _shifting(backend))


def redis_harness(server_url: str, **options: int) -> Harness:
    # Each harness has its own key prefix, so tests sharing one server never meet.
    url = f"{server_url}?prefix=t{uuid.uuid4().hex[:12]}"
    backend = RedisBackend.from_url(url, **options)
    return Harness("redis", url, backend, _shifting(backend))


def cloudtasks_harness(**options: Any) -> Harness:
    """The Cloud Tasks backend on its own fake service, creating queues on first use
    as the bridge does on Redis, every v1 project in its namesake Cloud Tasks project."""
    from backends.cloudtasks.backend import CloudTasksBackend
    from tests.support.cloudtasks_fake import FakeCloudTasks

    fake = FakeCloudTasks().start()
    # The suite leases far faster than 10 calls a second; tests of the throttle switch it on.
    fake.lease_rate_limit = None
    # projects=*: each v1 project names its own Cloud Tasks project, as App Engine did.
    url = f"cloudtasks://{CLOUDTASKS_LOCATION}?create_queues=true&projects=*"
    backend = CloudTasksBackend.from_url(url, endpoint=fake.address, **options)
    backend.backoff = 0.001

    def move_clock(us: int) -> None:
        fake.clock.offset_us += us

    return Harness("cloudtasks", url, backend, move_clock, [fake.stop], fake)


def cloudtasks_bridge_harness(**options: Any) -> Harness:
    """The Cloud Tasks backend on the bridge's own v2beta2 front (gRPC), itself on memory:
    the staging proxy against a real server, the loop of issue 12 closed."""
    from backends.cloudtasks.backend import CloudTasksBackend
    from bridge.access.acl import Policy
    from bridge.access.auth import Anonymous
    from bridge.cloudtasks.grpc_server import GrpcFront
    from bridge.cloudtasks.methods import Front

    inner = MemoryBackend.from_url("memory://", **options)
    queues = _SharedQueues()
    # The front alone, not a whole app, and silent: the metrics and log tests count the
    # proxy's calls only. Its queues keep deleted names as long as the proxy asks Cloud
    # Tasks to (tombstone_ttl).
    tombstones = options.get("tombstone_seconds", DEFAULT_TOMBSTONE_SECONDS)
    front = GrpcFront(
        Front(inner, queues, Anonymous(), Policy(), tombstone_seconds=tombstones), "127.0.0.1:0", log_calls=False
    )
    url = f"cloudtasks://{CLOUDTASKS_LOCATION}?create_queues=true&projects=*"
    backend = CloudTasksBackend.from_url(url, endpoint=f"127.0.0.1:{front.port}", **options)
    backend.backoff = 0.001

    def use_queues(path: Path) -> None:
        queues.inner = QueueRegistry.from_file(path)

    closers = [front.stop, inner.close]
    return Harness("cloudtasks-bridge", url, backend, _shifting(inner), closers, use_queues=use_queues)


class _SharedQueues(QueueRegistry):
    """A queue registry whose definitions a test may replace after the server started."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = QueueRegistry()

    def resolve(self, name: str) -> QueueConfig:
        return self.inner.resolve(name)

    def declared(self) -> tuple[QueueConfig, ...]:
        return self.inner.declared()


#: Clock moves a Pub/Sub test may make by waiting; the emulator's clock cannot be moved.
PUBSUB_LONGEST_WAIT_US = 3_000_000


def pubsub_harness(emulator: str, **options: Any) -> Harness:
    """The Pub/Sub backend on Google's emulator, making queues on first use, every v1
    project in its namesake Pub/Sub project, each harness under a prefix of its own."""
    import time

    from backends.pubsub.backend import PubSubBackend
    from tests.support.capabilities import recording

    prefix = f"t{uuid.uuid4().hex[:12]}-"
    url = f"pubsub://projects/demo-app?emulator={emulator}&create_queues=true&projects=*&prefix={prefix}"
    backend = recording(PubSubBackend.from_url(url, **options))

    def move_clock(us: int) -> None:
        if not 0 <= us <= PUBSUB_LONGEST_WAIT_US:
            pytest.skip(f"moves the clock by {us / 1e6:g} s, and the Pub/Sub emulator's clock cannot be moved")
        time.sleep(us / 1e6)

    return Harness("pubsub", url, backend, move_clock)


@dataclass(frozen=True)
class Entry:
    """How a backend variant is opened, and what it is marked with."""

    #: Opens a harness: the test's request (for session fixtures: services, the
    #: ``grpc_available`` check) and ``from_url``'s keyword arguments.
    open: Callable[[pytest.FixtureRequest, dict[str, Any]], Harness]
    marks: tuple[pytest.MarkDecorator, ...]
    #: Its leases are lease.lua's (tests/contract/test_lease_script.py runs on these).
    scripted: bool = False


def _open_memory(request: pytest.FixtureRequest, options: dict[str, Any]) -> Harness:
    return memory_harness(**options)


def _open_redis(request: pytest.FixtureRequest, options: dict[str, Any]) -> Harness:
    return redis_harness(request.getfixturevalue("redis_server").url, **options)


def _open_redis_cluster(request: pytest.FixtureRequest, options: dict[str, Any]) -> Harness:
    return redis_harness(request.getfixturevalue("redis_cluster").url, **options)


def _open_cloudtasks(request: pytest.FixtureRequest, options: dict[str, Any]) -> Harness:
    request.getfixturevalue("grpc_available")
    return cloudtasks_harness(**options)


def _open_cloudtasks_bridge(request: pytest.FixtureRequest, options: dict[str, Any]) -> Harness:
    request.getfixturevalue("grpc_available")
    return cloudtasks_bridge_harness(**options)


def _open_pubsub(request: pytest.FixtureRequest, options: dict[str, Any]) -> Harness:
    return pubsub_harness(request.getfixturevalue("pubsub_emulator").address, **options)


#: Every backend variant by name (its pytest id).
REGISTRY: dict[str, Entry] = {
    "memory": Entry(_open_memory, (pytest.mark.memory,), scripted=True),
    "redis": Entry(_open_redis, (pytest.mark.redis,), scripted=True),
    "redis-cluster": Entry(_open_redis_cluster, (pytest.mark.cluster,), scripted=True),
    "cloudtasks": Entry(_open_cloudtasks, (pytest.mark.cloudtasks,)),
    # The Cloud Tasks backend once more, on the bridge's own v2beta2 front instead of the fake.
    "cloudtasks-bridge": Entry(_open_cloudtasks_bridge, (pytest.mark.cloudtasks,)),
    # Pub/Sub on Google's emulator; the cases it declares it cannot do are skipped
    # (tests/support/capabilities.py).
    "pubsub": Entry(_open_pubsub, (pytest.mark.pubsub,)),
}

#: One pytest parameter per backend, with its marks and id.
BACKENDS = [pytest.param(Variant(name), marks=entry.marks, id=name) for name, entry in REGISTRY.items()]


def open_variant(name: str, request: pytest.FixtureRequest, **options: Any) -> Harness:
    """A harness of the backend variant ``name``; an unknown name fails, naming the known ones."""
    entry = REGISTRY.get(name)
    if entry is None:
        known = ", ".join(REGISTRY)
        pytest.fail(f"unknown backend variant {name!r}: tests/support/harness.py's REGISTRY has {known}")
    return entry.open(request, options)
