"""The reference of the throughput ratios: a minimal Flask endpoint with one Redis round trip.

``POST /incr`` increments a counter and answers it as JSON: routing, one ``INCR`` and a
small JSON body, with none of the bridge's own work (Discovery-driven validation, Lua,
base64, Task encoding). run.py serves it with the bridge's gunicorn settings, on the
same Redis server, so ``bridge req/s ÷ reference req/s`` is the share of the floor the
bridge keeps. By hand::

    gunicorn -w 2 -k gthread --threads 8 --no-control-socket \\
        "bench.reference_app:create_app('redis://127.0.0.1:6379/0')"
"""

from __future__ import annotations

import json

import redis
from flask import Flask, Response

COUNTER_KEY = "bench:reference:counter"


def create_app(redis_url: str) -> Flask:
    client = redis.Redis.from_url(redis_url)
    app = Flask("reference")

    @app.post("/incr")
    def incr() -> Response:
        value = client.incr(COUNTER_KEY)
        return Response(json.dumps({"value": value}), mimetype="application/json")

    return app
