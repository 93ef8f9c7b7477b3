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
from bridge.gate.access import Admission
from bridge.gate.backend import observed
from bridge.gate.crosssite import CrossSite
from bridge.gate.head import check_head
from bridge.gate.http import HttpGate
from bridge.gate.override import MethodOverride
from bridge.ops import health, logs, metrics
from bridge.settings import Settings
from bridge.taskqueue import routes as taskqueue_routes
from bridge.taskqueue.dialect import DIALECTS, Dialect
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
    #: The project allow-list, authentication and ACLs every front asks (bridge.gate.access).
    admission: Admission
    #: How the v1 API writes its JSON (bridge.taskqueue.dialect).
    dialect: Dialect


def create_app(settings: Settings | None = None, *, backend: Backend | None = None) -> Flask:
    """Build the app; ``backend`` replaces the one ``settings.backend`` names (tests)."""
    settings = settings or Settings.from_env()
    projects, strict = settings.projects, settings.strict_leases
    dialect = DIALECTS[settings.dialect]
    # The deployment's names, for queue.yaml, --projects and every front (the admission).
    names = dialect.names
    if settings.queues:
        queues = QueueRegistry.from_file(settings.queues, projects=projects, strict_leases=strict, names=names)
    else:
        queues = QueueRegistry(projects=projects, strict_leases=strict, names=names)
    discovery = Discovery.load(names)
    authenticator = open_authenticator(settings)
    backend = backend or open_backend(settings.backend, **settings.backend_options())
    meter = metrics.BackendMeter()
    metered = observed(backend, meter)

    # No static folder: the console serves its own files; nothing else is static.
    app = Flask("bridge", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    policy = Policy.from_settings(settings)
    admission = Admission(queues, authenticator, policy)
    bridge = Bridge(settings, metered, queues, discovery, authenticator, policy, meter, admission, dialect)
    app.extensions["bridge"] = bridge
    errors.register(app)
    logs.register(app)
    # /metrics shows queue names and traffic; a staging proxy may want it behind the API's credentials.
    guard = (lambda: authenticator.identify(request.headers.get("Authorization"))) if settings.metrics_auth else None
    metrics.register(app, backend, meter, queues, guard)
    health.register(app, metered)
    # The Cloud Tasks v2beta2 front on the same queues: HTTP/JSON here, gRPC per worker (bridge.server.serving).
    front = cloudtasks.Front(
        metered,
        queues,
        authenticator,
        policy,
        from_file=settings.queues is not None,
        tombstone_seconds=settings.tombstone_seconds,
        max_response_bytes=settings.max_response_bytes,
    )
    app.extensions["cloudtasks"] = front
    cloudtasks_rest.register(app, front, settings.max_body_bytes)
    console.register(app, bridge)
    fast = taskqueue_routes.register(app, bridge)

    # Last: the gate's HTTP pipeline wraps the whole app.
    cross_site = CrossSite(settings.public_url, forms=(console.PREFIX,), not_forms=(console.API_PREFIX,))
    checks = (check_head, cross_site, MethodOverride(settings.max_body_bytes))
    renderers = (
        (cloudtasks_rest.PREFIX, cloudtasks_rest.render_error),
        (cloudtasks_rest.UPLOAD_PATH, cloudtasks_rest.render_error),
    )
    app.wsgi_app = HttpGate(app, checks, fast, renderers)  # type: ignore[method-assign]
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
