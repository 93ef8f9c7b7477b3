"""Fixtures shared by every test: real services, one backend per parameter, the bridge.

A service that cannot be started skips its tests on a laptop and fails them in CI
(CI=true), so that a green CI run always means every backend was exercised.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import create_app
from bridge.access.auth import hash_token
from bridge.settings import Settings
from tests.support import google_facts
from tests.support.harness import BACKENDS, Harness, Variant, memory_harness, open_variant, redis_harness
from tests.support.http import BridgeServer, Clients, memory_bridge
from tests.support.known_differences import mark_known_differences
from tests.support.production import ProductionServers
from tests.support.pubsub_emulator import PubSubEmulator
from tests.support.redis_server import RedisCluster, RedisServer

#: Skips the cases a backend declares it cannot do (Backend.supports), and only those.
pytest_plugins = ["tests.support.capabilities"]

CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
# gRPC's C core logs at INFO when a test stops a fake Cloud Tasks server under a client.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _share_url_builders() -> None:
    """Build each of werkzeug's URL builders once per process, not once per app.

    werkzeug compiles two builder functions with ``compile()`` for every rule of every
    app: two thirds of building the bridge's app, which the suite does some 2,000 times
    (a quarter of the HTTP suite's CPU). A builder depends only on its rule (the text,
    its parsed parts and its defaults), so apps share them. Nothing else changes; should
    werkzeug rename its method, the suite runs as before, only slower.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None:
        return
    built: dict[object, Any] = {}

    def shared(rule: Rule, append_unknown: bool = True) -> Any:
        try:
            key = (rule.rule, tuple(rule._trace), tuple(sorted((rule.defaults or {}).items())), append_unknown)
            hash(key)
        except (AttributeError, TypeError):
            return compile_builder(rule, append_unknown)
        if key not in built:
            built[key] = compile_builder(rule, append_unknown)
        return built[key]

    Rule._compile_builder = shared  # type: ignore[method-assign,assignment]


_share_url_builders()


#: How the skips of a missing service begin; the run's summary lists them (`pytest_terminal_summary`).
UNAVAILABLE = "service missing: "


def unavailable(reason: str) -> None:
    """Skip on a laptop; fail in CI, where every backend must run."""
    if CI:
        pytest.fail(f"{reason} (CI=true requires every backend)", pytrace=False)
    pytest.skip(UNAVAILABLE + reason)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not on PATH")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def redis_server(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cli = shutil.which("redis-cli")
    if cli is None:
        unavailable("redis-cli is not on PATH (it creates the test cluster)")
    assert cli is not None
    cluster = RedisCluster(redis_binary, cli, tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def production_servers(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProductionServers]:
    """The gunicorn servers of the production variant, started as its tests need them."""
    servers = ProductionServers(redis_server, tmp_path_factory.mktemp("production"))
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def grpc_available() -> None:
    """The Cloud Tasks backend and its fake need grpc (and the Google client)."""
    try:
        import google.cloud.tasks_v2beta2  # noqa: F401
        import grpc  # noqa: F401
    except ImportError as exc:
        unavailable(f"the Cloud Tasks tests need grpcio and google-cloud-tasks: {exc}")


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubEmulator]:
    try:
        emulator = PubSubEmulator(tmp_path_factory.mktemp("pubsub")).start()
    except FileNotFoundError as exc:
        unavailable(f"{exc} is not installed")
    yield emulator
    emulator.stop()


VARIANTS = [
    *BACKENDS,
    # The HTTP suite once more with token auth on. Credentials are checked before the
    # backend is reached, so the cheapest backend is enough (and the backend-level
    # contract suite, which has no credentials, runs on BACKENDS alone).
    pytest.param(Variant("memory", "token"), marks=[pytest.mark.memory, pytest.mark.auth], id="memory-token"),
    # Once more with clients built from Google's own document instead of the served one:
    # a worker written against Google's service must see the same answers.
    pytest.param(Variant("memory", discovery="google"), marks=pytest.mark.memory, id="memory-google-document"),
    # Once more on the production worker: gunicorn with the bridge's own worker class, in
    # a process of its own, on a real Redis (tests/support/production.py), where every
    # other variant serves from werkzeug's development server in the test's process.
    pytest.param(
        Variant("redis", server="production"),
        marks=[pytest.mark.redis, pytest.mark.production],
        id="redis-production",
    ),
]

#: Who the suite is when its bridges ask for tokens, and the token that proves it.
SUITE_IDENTITY = "suite@example.test"
SUITE_TOKEN = "suite-token-0123456789abcdef"


#: Modules whose tests share a module-scoped service (a venv, a gunicorn, a browser): each
#: runs on one xdist worker, which starts the service once.
ONE_WORKER = {"test_install.py": "install", "test_stress.py": "stress", "test_console_browser.py": "browser"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core. A third of the suite's time is spent waiting on
    servers, subprocesses and timeouts, and a second worker per core fills it (on 2 cores:
    169 s instead of 194 s; three per core only adds each worker's start-up)."""
    return 2 * len(os.sched_getaffinity(0))


@pytest.hookimpl(tryfirst=True)  # before xdist adds the groups to the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_known_differences(items)
    # A test that reads or patches the app in its own process has no production variant.
    elsewhere = [item for item in items if _production(item) and item.get_closest_marker("in_process")]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        gone = {id(item) for item in elsewhere}
        items[:] = [item for item in items if id(item) not in gone]
    for item in items:
        group = ONE_WORKER.get(item.path.name)
        if group is None and item.get_closest_marker("pubsub") is not None:
            group = "pubsub"  # the Pub/Sub emulator, a JVM, starts on one worker only
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # The tests that take seconds (tools run in a subprocess, gunicorn, benchmarks) start
    # first, so that the run does not end waiting for one of them on a single worker.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _production(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    variant = callspec.params.get("variant") if callspec is not None else None
    return isinstance(variant, Variant) and variant.server == "production"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The reasons of the skips that mean a missing service; the other skips (a backend
    that declares it cannot do something) and the xfails are only counted."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if UNAVAILABLE in reason:
            reason = reason.split(UNAVAILABLE, 1)[1]
            reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        terminalreporter.write_line(f"SKIPPED {count} (a service is missing; CI=true fails them): {reason}")


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> Variant:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def open_harness(variant: Variant, request: pytest.FixtureRequest) -> Iterator[Callable[..., Harness]]:
    """Opens harnesses of this parameter's backend; options go to ``from_url``."""
    opened: list[Harness] = []

    def open_one(**options: Any) -> Harness:
        if variant.server == "production":
            servers: ProductionServers = request.getfixturevalue("production_servers")
            harness = servers.harness(**options)
        else:
            harness = open_variant(variant.backend, request, **options)
        opened.append(harness)
        return harness

    yield open_one
    for harness in opened:
        harness.close()


@pytest.fixture
def harness(open_harness: Callable[..., Harness]) -> Harness:
    return open_harness()


@pytest.fixture
def make_bridge(
    harness: Harness, variant: Variant, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Clients]]:
    """Starts bridges on this test's backend; keyword arguments are Settings fields.

    In the token variant, a bridge whose test does not choose ``auth`` asks for tokens,
    and its clients (``api()``, ``request()``) send the suite's. In the production
    variant, the bridge is a gunicorn of `production_servers` (it has no ``app``).
    """
    servers: list[Clients] = []

    def start(**settings: Any) -> Clients:
        token = None
        if variant.auth == "token" and "auth" not in settings:
            token = SUITE_TOKEN
            tokens = tmp_path / "suite-tokens.txt"
            tokens.write_text(f"{hash_token(SUITE_TOKEN)} {SUITE_IDENTITY}\n")
            settings = {"auth": "token", "tokens_file": tokens, **settings}
            if "queues" in settings:
                # The suite's queue files carry ACLs naming other people: be their admin.
                settings.setdefault("admins", (SUITE_IDENTITY,))
        if "queues" in settings and harness.use_queues is not None:
            harness.use_queues(settings["queues"])
        checked = Settings(backend=harness.url, **settings)
        if variant.server == "production":
            servers.append(request.getfixturevalue("production_servers").serve(**settings))
            return servers[-1]
        app = create_app(checked, backend=harness.backend)
        document = google_facts.document if variant.discovery == "google" else None
        servers.append(BridgeServer(app, token, document))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def bridge(make_bridge: Callable[..., Clients]) -> Clients:
    return make_bridge()


@pytest.fixture
def memory_server() -> Iterator[BridgeServer]:
    """A bridge with default settings on a memory:// backend of its own."""
    with memory_bridge(Settings()) as server:
        yield server


@pytest.fixture
def api(bridge: Clients) -> Any:
    return bridge.api()


@pytest.fixture
def queue_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "queue.yaml"
        path.write_text(text)
        return path

    return write


V2_TARGETS = [
    pytest.param(("fake", "grpc"), marks=pytest.mark.cloudtasks, id="fake"),
    pytest.param(("memory", "grpc"), marks=pytest.mark.memory, id="grpc-memory"),
    pytest.param(("memory", "rest"), marks=pytest.mark.memory, id="rest-memory"),
    pytest.param(("redis", "grpc"), marks=pytest.mark.redis, id="grpc-redis"),
    pytest.param(("redis-cluster", "rest"), marks=pytest.mark.cluster, id="rest-redis-cluster"),
]


@pytest.fixture(params=V2_TARGETS)
def v2(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Cloud Tasks v2beta2 server under the official client: the strict fake, or the
    bridge's front over gRPC or HTTP/JSON on a backend (tests.support.v2beta2)."""
    request.getfixturevalue("grpc_available")
    from tests.support import v2beta2

    backend, transport = request.param
    if backend == "fake":
        target = v2beta2.fake_target()
    else:
        if backend == "memory":
            harness = memory_harness()
        else:
            fixture = "redis_server" if backend == "redis" else "redis_cluster"
            harness = redis_harness(request.getfixturevalue(fixture).url)
        app = create_app(Settings(backend=harness.url), backend=harness.backend)
        target = v2beta2.front_target(f"{transport}-{backend}", app, transport, harness.advance_us)
        target.closers.insert(0, harness.close)
    yield target
    target.close()
