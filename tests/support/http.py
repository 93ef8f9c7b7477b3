"""The bridge on a real HTTP socket, and the clients that talk to it."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from werkzeug.serving import WSGIRequestHandler, make_server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class BridgeServer:
    """A threaded WSGI server on a free port, serving one app."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def api(self, **options: Any) -> Any:
        """The Google API client, built from the Discovery document this bridge serves."""
        return build(
            "taskqueue",
            "v1beta2",
            discoveryServiceUrl=self.url + "/discovery/v1/apis/{api}/{apiVersion}/rest",
            static_discovery=False,
            cache_discovery=False,
            **options,
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """A raw HTTP request, for what a well-behaved client would never send."""
        if isinstance(body, dict):
            body = json.dumps(body)
        connection = http.client.HTTPConnection("127.0.0.1", self._server.server_port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(app: Flask) -> Iterator[BridgeServer]:
    server = BridgeServer(app)
    try:
        yield server
    finally:
        server.close()


def error_of(request: Any, status: int, reason: str) -> dict[str, Any]:
    """Execute a googleapiclient request that must fail; check and return the envelope."""
    with pytest.raises(HttpError) as caught:
        request.execute()
    assert caught.value.resp.status == status, caught.value.content
    envelope: dict[str, Any] = json.loads(caught.value.content)
    assert envelope["error"]["code"] == status
    assert envelope["error"]["errors"][0]["reason"] == reason, envelope
    assert envelope["error"]["errors"][0]["domain"] == "global"
    return envelope
