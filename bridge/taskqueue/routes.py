"""The v1beta2 routes on the app: one view per Discovery method, the Discovery document,
batch, and the table of the API's methods the gate answers past Flask (`bridge.taskqueue.fastpath`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask, Response, request

from backends.errors import NotFound
from bridge.errors import ParseError
from bridge.gate import budget
from bridge.gate.bodies import body_bytes, query_args
from bridge.ops import logs
from bridge.taskqueue import batch, fields
from bridge.taskqueue.discovery import Method
from bridge.taskqueue.fastpath import ApiCall, FastRoutes
from bridge.taskqueue.handlers import HANDLERS, Call, Handler, answer_bytes_for, handlers_for
from bridge.taskqueue.wire import queue_path

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from bridge.app import Bridge

_OVERRIDABLE = {"GET", "POST", "PUT", "PATCH", "DELETE"}
#: Methods whose request line says how many tasks they handed out.
_COUNTED = frozenset({"taskqueue.tasks.lease", "taskqueue.tasks.list"})


def register(app: Flask, bridge: Bridge) -> FastRoutes:
    """Serve the v1beta2 API, its Discovery document and batch on ``app``; return the
    API's methods as the table the gate answers from past Flask (`bridge.gate.http`)."""
    discovery, settings = bridge.discovery, bridge.settings
    missing = {method.id for method in discovery.methods} - HANDLERS.keys()
    if missing:
        raise RuntimeError(f"methods without a handler: {', '.join(sorted(missing))}")
    # The deployment's dialect, bound once here: nothing is looked up per request.
    handlers, answers = handlers_for(bridge.dialect), answer_bytes_for(bridge.dialect)
    calls = [
        (method, _api_call(bridge, method, handlers[method.id], answers[method.id])) for method in discovery.methods
    ]
    for method, call in calls:
        app.add_url_rule(method.rule, endpoint=method.id, view_func=_api_view(call), methods=[method.http_method])
    serve_discovery = _discovery_view(bridge)
    app.add_url_rule("/discovery/v1/apis/<api>/<version>/rest", "discovery", serve_discovery)
    app.add_url_rule("/api/<api>/<version>", "discovery_short", serve_discovery)
    batch.register(app, lambda: body_bytes(request.environ, settings.max_body_bytes), settings.max_response_bytes)
    return FastRoutes(app, calls)


def _api_view(call: ApiCall) -> Callable[..., Response]:
    """The Flask view of an API method, for the requests that bridge.taskqueue.fastpath leaves to Flask."""

    def view(**path: str) -> Response:
        status, body = call(request.environ, path)
        if body is None:
            return Response(status=status)
        return Response(body, status=status, mimetype="application/json")

    return view


def _api_call(bridge: Bridge, method: Method, handler: Handler, answer_bytes: Callable[[str], int]) -> ApiCall:
    admission = bridge.admission
    global_params = bridge.discovery.global_params
    global_names = {p.name for p in global_params}
    # Most calls set none of the global parameters (alt, fields, prettyPrint, …).
    global_defaults = {p.name: p.parse(None) for p in global_params}

    def call(environ: WSGIEnvironment, path: Mapping[str, str]) -> tuple[int, list[bytes] | None]:
        # Credentials first: a caller who has none learns nothing, not even which queues exist.
        identity = admission.identify(environ.get("HTTP_AUTHORIZATION"))
        args = query_args(environ)
        if global_names.isdisjoint(args):
            options = global_defaults
        else:
            options = {p.name: p.parse(args.get(p.name)) for p in global_params}
        selection = _selection(options["fields"]) if options["fields"] else None
        params = {p.name: p.parse(path[p.name] if p.location == "path" else args.get(p.name)) for p in method.params}
        project = params["project"]
        # Before the body is read and before the backend is asked anything.
        queue, config = admission.queue(identity, project, params["taskqueue"], method.id)
        response_bytes = bridge.settings.max_response_bytes
        shared: budget.Budget | None = environ.get(budget.KEY)
        if shared is not None:
            # A batch part: the most its answer can weigh must fit what the batch has left.
            worst = budget.PART_BYTES + answer_bytes(queue_path(project, queue.name))
            response_bytes = shared.reserve(worst, method.id) - budget.PART_BYTES
        body = _read_body(environ, bridge.settings.max_body_bytes) if method.takes_body else None
        call = Call(project, queue, config, params, body, bridge.settings.admins, response_bytes, shared is None)
        status, resource = handler(bridge.backend, call)
        if method.id in _COUNTED:
            environ[logs.TASKS] = len(resource.get("items", ())) if resource else 0
        if resource is None:
            return status, None
        if selection is not None:
            resource = fields.apply(resource, selection)
        return status, _encoded(resource, options["prettyPrint"])

    return call


#: Bytes of encoded items a response part gathers before it is sent.
PART_BYTES = 64 * 1024
#: Payload bytes (in base64) up to which a response is encoded in one piece.
WHOLE_BYTES = 1024 * 1024


def _encoded(resource: dict[str, Any], pretty: bool) -> list[bytes]:
    """The resource as JSON, in parts that werkzeug sends one after the other.

    A lease response can be 32 MiB. Encoding its items one at a time, each dropped
    from the resource once encoded, keeps the peak near one response in memory, where
    one ``dumps`` of the whole held the resource, the output and orjson's growing
    buffer at once (measured: over 3x the response). orjson: the standard library's
    indenting encoder is pure Python, and pretty printing is Google's default. Items
    are gathered into parts of about `PART_BYTES`: gunicorn sends each part with a
    system call of its own, and one part per item cost a 100-task lease 100 of them.
    A response whose payloads come to `WHOLE_BYTES` or less is one ``dumps``: at that
    size the peak does not matter, and item by item cost a lease of 100 tasks of 1 KiB
    a sixth of its time in the bridge's process.
    """
    option = orjson.OPT_INDENT_2 if pretty else 0
    items = resource.get("items")
    if not isinstance(items, list) or len(items) < 2 or _payload_chars(items) <= WHOLE_BYTES:
        return [orjson.dumps(resource, option=option)]
    frame = orjson.dumps({**resource, "items": []}, option=option)
    before, after = frame.split(b'"items": []' if pretty else b'"items":[]', 1)
    parts: list[bytes] = []
    pending = [before + (b'"items": [' if pretty else b'"items":[')]
    size = 0
    for index, item in enumerate(items):
        text = orjson.dumps(item, option=option)
        items[index] = None  # its payload can go now
        pending.append((b"," if index else b"") + (b"\n    " + text.replace(b"\n", b"\n    ") if pretty else text))
        size += len(text)
        if size >= PART_BYTES:
            parts.append(b"".join(pending))
            pending, size = [], 0
    pending.append((b"\n  ]" if pretty else b"]") + after)
    parts.append(b"".join(pending))
    return parts


_PAYLOAD = operator.itemgetter("payloadBase64")


def _payload_chars(items: list[Any]) -> int:
    """The characters of the items' payloads: in C when every item has one (a lease),
    item by item in Python otherwise (a list, or a `fields` selection without them)."""
    try:
        return sum(map(len, map(_PAYLOAD, items)))
    except KeyError:
        return sum(len(item.get("payloadBase64") or "") for item in items)


@functools.lru_cache(maxsize=256)
def _selection(text: str) -> fields.Selection:
    return fields.parse(text)


def _read_body(environ: WSGIEnvironment, limit: int) -> Any:
    data = body_bytes(environ, limit)
    if not data.strip():
        return None
    try:
        return orjson.loads(data)
    except ValueError:
        raise ParseError("Parse error: the request body is not valid JSON") from None


def _discovery_view(bridge: Bridge) -> Callable[..., Response]:
    discovery = bridge.discovery
    public_url = bridge.settings.public_url

    def view(api: str, version: str) -> Response:
        if (api, version) != (discovery.api, discovery.version):
            raise NotFound(f"No API {api}:{version} here; this bridge serves {discovery.api}:{discovery.version}")
        root = public_url.rstrip("/") + "/" if public_url else request.host_url
        return Response(discovery.render(root), mimetype="application/json")

    return view
