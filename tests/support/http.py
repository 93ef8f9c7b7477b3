"""The bridge on a real HTTP socket, and the clients that talk to it."""

from __future__ import annotations

import http.client
import json
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from werkzeug.serving import WSGIRequestHandler, make_server

from backends.redis.memory import MemoryBackend
from bridge.app import create_app
from bridge.client import authorized_http, connect
from bridge.settings import Settings


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


class Clients:
    """The clients of a bridge at ``url``: the Google API client and raw HTTP requests.

    With a ``token``, the clients it hands out send it: ``api()`` through the client's
    ``http`` object, ``request()`` as a header unless the test gives its own.
    """

    def __init__(
        self, url: str, token: str | None = None, document: Callable[[str], dict[str, Any]] | None = None
    ) -> None:
        self.url = url
        self.token = token
        #: Builds the Discovery document clients use from the root URL; None: the served one.
        self.document = document
        self._clients: list[Any] = []

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def api(self, token: str | None = None) -> Any:
        """The Google API client, built from the Discovery document this bridge serves.

        It sends ``token``, or else the server's own (if any). With a ``document``, the
        client is built from that instead, pointed at this bridge.
        """
        if self.document is not None:
            http = authorized_http(token or self.token)
            client = build_from_document(self.document(self.url + "/"), http=http)
        else:
            client = connect(self.url, token=token or self.token)
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        """Close the connections the API clients keep open (a server that keeps them alive)."""
        for client in self._clients:
            client.close()
        self._clients.clear()

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
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def close(self) -> None:
        self.close_clients()


class BridgeServer(Clients):
    """A threaded WSGI server (werkzeug's development server) on a free port, serving
    one app in the test's process (``app``, which tests may read).

    Its accept loop waits on the listening socket and on a wake-up socket, so ``close()``
    returns at once; ``serve_forever`` would only notice a shutdown at its next poll,
    which across the suite's several hundred servers added up to half a minute.
    """

    def __init__(
        self, app: Flask, token: str | None = None, document: Callable[[str], dict[str, Any]] | None = None
    ) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        super().__init__(f"http://127.0.0.1:{self._server.server_port}", token, document)
        self._wake, self._woken = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_until_woken, daemon=True)
        self._thread.start()

    def _accept_until_woken(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server.socket, selectors.EVENT_READ)
            selector.register(self._woken, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._woken in ready:
                    return
                # The socket is readable, so this accepts without waiting; each request
                # runs on a thread of its own (the server is threaded).
                self._server.handle_request()

    def close(self) -> None:
        super().close()
        self._wake.send(b"x")
        self._thread.join()
        self._server.server_close()
        self._wake.close()
        self._woken.close()


@contextmanager
def serving(app: Flask, token: str | None = None) -> Iterator[BridgeServer]:
    server = BridgeServer(app, token)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def memory_bridge(settings: Settings) -> Iterator[BridgeServer]:
    """A bridge with ``settings`` on a memory:// backend of its own, for tests of what every
    backend shows alike (the console's pages, the queue CLI)."""
    backend = MemoryBackend.from_url("memory://")
    try:
        with serving(create_app(settings, backend=backend)) as server:
            yield server
    finally:
        backend.close()


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
