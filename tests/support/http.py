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
from googleapiclient.errors import HttpError
from werkzeug.serving import WSGIRequestHandler, make_server

from bridge_tools.client import connect


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
    """A threaded WSGI server on a free port, serving one app.

    With a ``token``, the clients it hands out send it: ``api()`` through the client's
    ``http`` object, ``request()`` as a header unless the test gives its own.
    """

    def __init__(self, app: Flask, token: str | None = None) -> None:
        self.app = app
        self.token = token
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def api(self, token: str | None = None) -> Any:
        """The Google API client, built from the Discovery document this bridge serves.

        It sends ``token``, or else the server's own (if any).
        """
        return connect(self.url, token=token or self.token)

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
        headers = dict(headers or {})
        if self.token and not any(name.lower() == "authorization" for name in headers):
            headers["Authorization"] = f"Bearer {self.token}"
        connection = http.client.HTTPConnection("127.0.0.1", self._server.server_port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(app: Flask, token: str | None = None) -> Iterator[BridgeServer]:
    server = BridgeServer(app, token)
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
