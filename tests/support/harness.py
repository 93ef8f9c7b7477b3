"""One backend under test, with a clock the test can move on."""

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
    """What a test runs on: a backend, and whether the bridges it starts ask for tokens."""

    backend: str
    auth: str = "none"
    #: The document clients are built from: the one the bridge serves, or "google" (the
    #: facts of Google's own document, tests/support/google_facts.py).
    discovery: str = "served"


#: Every backend, each with its pytest mark and id (``pytest -m redis``, ``-k cloudtasks``).
#: Both contract suites run on each: the backend-level one (tests/contract/) and, with
#: the token variant added, the HTTP one.
BACKENDS = [
    pytest.param(Variant("memory"), marks=pytest.mark.memory, id="memory"),
    pytest.param(Variant("redis"), marks=pytest.mark.redis, id="redis"),
    pytest.param(Variant("redis-cluster"), marks=pytest.mark.cluster, id="redis-cluster"),
    pytest.param(Variant("cloudtasks"), marks=pytest.mark.cloudtasks, id="cloudtasks"),
    # The Cloud Tasks backend once more, on the bridge's own v2beta2 front instead of the fake.
    pytest.param(Variant("cloudtasks-bridge"), marks=pytest.mark.cloudtasks, id="cloudtasks-bridge"),
    # Pub/Sub on Google's emulator; the cases it declares it cannot do are skipped
    # (tests/support/capabilities.py).
    pytest.param(Variant("pubsub"), marks=pytest.mark.pubsub, id="pubsub"),
]


@dataclass
class Harness:
    name: str
    url: str
    backend: Backend
    #: Moves the clock of the backend's storage on by µs.
    move_clock: Callable[[int], None] | None = None
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
        if self.move_clock is not None:
            self.move_clock(us)
            return
        assert isinstance(self.backend, RedisBackend)
        self.backend.clock_shift_us += us

    def close(self) -> None:
        self.backend.close()
        for stop in self.on_close:
            stop()


def memory_harness(**options: int) -> Harness:
    return Harness("memory", "memory://", MemoryBackend.from_url("memory://", **options))


def redis_harness(server_url: str, **options: int) -> Harness:
    # Each harness has its own key prefix, so tests sharing one server never meet.
    url = f"{server_url}?prefix=t{uuid.uuid4().hex[:12]}"
    return Harness("redis", url, RedisBackend.from_url(url, **options))


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

    def move_clock(us: int) -> None:
        inner.clock_shift_us += us

    def use_queues(path: Path) -> None:
        queues.inner = QueueRegistry.from_file(path)

    return Harness("cloudtasks-bridge", url, backend, move_clock, [front.stop, inner.close], use_queues=use_queues)


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
