"""Cloud Tasks v2beta2 servers under test, each driven by the official client.

A `Target` is one server and one transport: the strict fake (gRPC), or the bridge's
front over gRPC or HTTP/JSON on a backend. The same checks run on all of them, so the
fake and the front keep each other honest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from flask import Flask
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2beta2 as ct
from google.cloud.tasks_v2beta2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from google.oauth2.credentials import Credentials

from bridge.cloudtasks.convert import HTTP_STATUS
from bridge.cloudtasks.grpc_server import GrpcFront
from tests.support.http import BridgeServer

LOCATION = "projects/demo-app/locations/us-central1"


def grpc_client(address: str, token: str | None = None) -> ct.CloudTasksClient:
    """The official client on a plain local gRPC server; ``token`` as bearer metadata."""
    channel = grpc.insecure_channel(address)
    if token is not None:
        bearer = _Bearer(token)
        channel = grpc.intercept_channel(channel, bearer)
    return ct.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def rest_client(url: str, token: str | None = None) -> ct.CloudTasksClient:
    """The official client's REST transport on ``http://HOST:PORT``."""
    credentials = Credentials(token) if token is not None else AnonymousCredentials()
    return ct.CloudTasksClient(
        transport="rest", client_options=ClientOptions(api_endpoint=url), credentials=credentials
    )


class _Bearer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self.token = token

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = [*(details.metadata or []), ("authorization", f"Bearer {self.token}")]
        return continuation(details._replace(metadata=metadata), request)


@dataclass
class Target:
    """One Cloud Tasks server and transport under test."""

    name: str
    transport: str
    client: ct.CloudTasksClient
    #: Moves the server's clock on by µs.
    move_clock: Callable[[int], None]
    #: Makes a queue exist (the fake needs it created; the front creates on first use).
    add_queue: Callable[[str], None]
    #: The v1 app behind a front (None for the fake).
    app: Flask | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def advance(self, seconds: float) -> None:
        self.move_clock(int(seconds * 1_000_000))

    def queue(self) -> str:
        """A fresh, empty queue."""
        name = f"{LOCATION}/queues/q{uuid.uuid4().hex[:10]}"
        self.add_queue(name)
        return name

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def refused(target: Target, code: grpc.StatusCode, call: Callable[[], Any]) -> gexc.GoogleAPICallError:
    """Run a call that must fail with ``code``: the gRPC status, or over REST the HTTP
    status and ``error.status`` of Google's JSON error."""
    with pytest.raises(gexc.GoogleAPICallError) as caught:
        call()
    error = caught.value
    if target.transport == "grpc":
        assert error.grpc_status_code == code, error
    else:
        assert error.code == HTTP_STATUS[code], error
        assert error.response.json()["error"]["status"] == code.name, error.response.text
        assert error.response.json()["error"]["code"] == HTTP_STATUS[code]
    return error


def front_target(name: str, app: Flask, transport: str, move_clock: Callable[[int], None]) -> Target:
    """The bridge's front on ``app``, over one transport."""
    closers: list[Callable[[], None]] = []
    if transport == "grpc":
        server = GrpcFront(app.extensions["cloudtasks"], "127.0.0.1:0")
        closers.append(server.stop)
        client = grpc_client(f"127.0.0.1:{server.port}")
    else:
        http = BridgeServer(app)
        closers.append(http.close)
        client = rest_client(http.url)
    closers.append(client.transport.close)
    return Target(name, transport, client, move_clock, lambda _: None, app, closers)


def fake_target() -> Target:
    from tests.support.cloudtasks_fake import FakeCloudTasks

    fake = FakeCloudTasks().start()
    # The checks lease far faster than 10 calls a second; the throttle has its own tests.
    fake.lease_rate_limit = None
    client = grpc_client(fake.address)

    def add_queue(name: str) -> None:
        fake.add_queue(LOCATION, name.rsplit("/", 1)[1])

    def move_clock(us: int) -> None:
        fake.clock.offset_us += us

    return Target("fake", "grpc", client, move_clock, add_queue, None, [fake.stop, client.transport.close])
