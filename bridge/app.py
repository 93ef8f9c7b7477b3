"""The app factory: the only way to build the bridge (tests, CLI and gunicorn use it).

Under plain gunicorn, ``gunicorn 'bridge:create_app()'`` reads the BRIDGE_* variables.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request

from backends import open_backend
from backends.base import Backend
from bridge import console, errors
from bridge.access.acl import Policy
from bridge.access.auth import Anonymous, Authenticator, TokenFile
from bridge.access.queues import QueueRegistry
from bridge.cloudtasks import methods as cloudtasks
from bridge.cloudtasks import rest as cloudtasks_rest
from bridge.gate.backend import observed
from bridge.gate.hosts import check_host
from bridge.ops import health, logs, metrics
from bridge.settings import Settings
from bridge.taskqueue import routes as taskqueue_routes
from bridge.taskqueue.discovery import Discovery


@dataclass(frozen=True)
class Bridge:
    """What the app shares between requests, kept in ``app.extensions["bridge"]``."""

    settings: Settings
    backend: Backend
    queues: QueueRegistry
    discovery: Discovery
    #: Who is calling (bridge.access.auth); only the API's methods ask.
    authenticator: Authenticator
    #: What they may do to which queue (bridge.access.acl).
    policy: Policy
    #: What the backend's calls did, and the queues they named (bridge.ops.metrics).
    meter: metrics.BackendMeter


def create_app(settings: Settings | None = None, *, backend: Backend | None = None) -> Flask:
    """Build the app; ``backend`` replaces the one ``settings.backend`` names (tests)."""
    settings = settings or Settings.from_env()
    projects, strict = settings.projects, settings.strict_leases
    if settings.queues:
        queues = QueueRegistry.from_file(settings.queues, projects=projects, strict_leases=strict)
    else:
        queues = QueueRegistry(projects=projects, strict_leases=strict)
    discovery = Discovery.load()
    authenticator = open_authenticator(settings)
    backend = backend or open_backend(settings.backend, **settings.backend_options())
    meter = metrics.BackendMeter()
    metered = observed(backend, meter)

    app = Flask("bridge")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    bridge = Bridge(settings, metered, queues, discovery, authenticator, Policy.from_settings(settings), meter)
    app.extensions["bridge"] = bridge
    errors.register(app)
    app.before_request(check_host)
    logs.register(app)
    # /metrics shows queue names and traffic; a staging proxy may want it behind the API's credentials.
    guard = (lambda: authenticator.identify(request.headers.get("Authorization"))) if settings.metrics_auth else None
    metrics.register(app, backend, meter, queues, guard)
    health.register(app, metered)
    # The Cloud Tasks v2beta2 front on the same queues: HTTP/JSON here, gRPC per worker (bridge.server.serving).
    front = cloudtasks.Front(
        metered, queues, authenticator, bridge.policy, settings.queues is not None, settings.tombstone_seconds
    )
    app.extensions["cloudtasks"] = front
    cloudtasks_rest.register(app, front)

    console.register(app, bridge)
    # Last: the v1 front wraps the whole app (its short way and the method override).
    taskqueue_routes.register(app, bridge)
    return app


def open_authenticator(settings: Settings) -> Authenticator:
    """The authenticator ``settings.auth`` names (settings were checked when built)."""
    if settings.auth == "token":
        assert settings.tokens_file is not None
        return TokenFile.load(settings.tokens_file)
    if settings.auth == "google":
        # Imported in this mode only: the rest of the time google-auth's JWT code is not needed.
        from bridge.access.idtoken import GoogleIdTokens

        assert settings.auth_audience is not None
        return GoogleIdTokens(settings.auth_audience, settings.auth_certs_url)
    return Anonymous()
