"""The registry of backend variants the suites run on (tests/support/harness.py)."""

from __future__ import annotations

import pytest

from bridge.server.serving import gunicorn_options
from bridge.settings import Settings
from tests.conftest import VARIANTS
from tests.support.harness import BACKENDS, REGISTRY, Variant, open_variant
from tests.support.production import ProductionServers


def test_an_unknown_backend_variant_fails_naming_the_known_ones(request: pytest.FixtureRequest) -> None:
    # Before the registry, any unknown name ran as Redis Cluster and passed.
    with pytest.raises(pytest.fail.Exception, match="unknown backend variant 'nats'.*memory, redis, redis-cluster"):
        open_variant("nats", request)


def test_every_entry_is_a_parameter_of_both_contract_suites() -> None:
    assert [param.id for param in BACKENDS] == list(REGISTRY)
    http = [param.id for param in VARIANTS]
    assert set(REGISTRY) <= set(http)
    # The HTTP suite's other variants run registered backends in other ways.
    variants = [param.values[0] for param in VARIANTS]
    assert {variant.backend for variant in variants if isinstance(variant, Variant)} <= set(REGISTRY)
    assert all(isinstance(variant, Variant) for variant in variants)


@pytest.mark.redis
def test_the_production_variant_is_gunicorn_with_the_bridges_own_worker(production_servers: ProductionServers) -> None:
    server = production_servers.serve(log_level="info")
    try:
        reply = server.request("GET", "/healthz")
        assert reply.status == 200 and reply.headers["Server"] == "gunicorn"
        worker = gunicorn_options(Settings())["worker_class"].__name__
        log = server.log.read_text()
        assert f"Using worker: {worker}" in log
    finally:
        server.close()
