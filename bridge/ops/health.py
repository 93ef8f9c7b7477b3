"""Probes: ``/healthz`` (the process answers) and ``/readyz`` (so does its backend).

Both are cheap and unauthenticated. ``/healthz`` touches nothing, so a liveness probe
never restarts a bridge for an outage of Redis that a restart cannot fix. ``/readyz``
pings the backend (on Redis this also loads the Lua scripts after a restart of the
server) and answers 503 in Google's error envelope while it fails, its message saying
why in one line ("connection refused at redis:6379"); it recovers by itself, because
every ping opens a fresh connection when the old one died. A failing probe logs
nothing: the backend logs an outage once, when it starts, and once when it ends.
"""

from __future__ import annotations

from flask import Flask, Response, json

from backends.base import Backend
from backends.errors import Unavailable
from bridge.errors import envelope_response


def _ok() -> Response:
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


def register(app: Flask, backend: Backend) -> None:
    def healthz() -> Response:
        return _ok()

    def readyz() -> Response:
        try:
            backend.ping()
        except Unavailable as exc:
            # A probe every few seconds would log every one of them (see the docstring).
            return envelope_response(exc)
        return _ok()

    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
