"""The HTTP/JSON transport of the Cloud Tasks v2beta2 front, under ``/v2beta2/`` on the main port.

The routes are the google.api.http rules of the v2beta2 service, as the official
client's REST transport calls them::

    CloudTasksClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint="http://HOST:PORT"),  # the scheme picks plain HTTP
        credentials=AnonymousCredentials(),
    )

A request message is built from the body (``*``, or the ``queue`` field for
CreateQueue/UpdateQueue), the path's resource name and the query string (the fields
left over, in JSON names; ``$alt``, ``alt``, ``key`` and the like are ignored), with
protobuf's JSON mapping, so enums arrive as names or numbers, and FieldMasks in either
spelling (``retryConfig.maxAttempts`` or ``retry_config.max_attempts``). Responses use the
same mapping, enums as names (``"state": "RUNNING"``) unless the request asks for numbers
with ``$alt=json;enum-encoding=int``, as Google's client libraries do. Errors are Google's
JSON error format for the API:
``{"error": {"code": 404, "message": "…", "status": "NOT_FOUND"}}``, whose HTTP status
the client reads to choose its exception class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask, Response, request
from google.protobuf import json_format

from backends.errors import ApiError, InvalidArgument, NotFound
from bridge.cloudtasks.convert import HTTP_STATUS, code_of
from bridge.cloudtasks.methods import METHODS, SERVICE, Front, invoke
from bridge.errors import as_api_error
from bridge.gate.bodies import body_bytes
from bridge.ops import logs

#: Where the transport's routes sit on the main port.
PREFIX = "/v2beta2/"
#: UploadQueueYaml's rule, the one outside PREFIX.
UPLOAD_PATH = "/api/queue/update"

_LOCATION = r"projects/[^/]+/locations/[^/]+"
_QUEUE = _LOCATION + r"/queues/[^/:]+"
_TASK = _QUEUE + r"/tasks/[^/:]+"
#: Query parameters every Google API takes, that say nothing of the request message.
_GLOBAL = frozenset({"alt", "key", "prettyPrint", "fields", "access_token", "quotaUser", "callback", "uploadType"})


@dataclass(frozen=True)
class Route:
    verb: str
    path: re.Pattern[str]
    method: str
    #: Where the body goes: "*" the whole request, a field name, or "" for no body.
    body: str
    #: The request field the path's resource name fills (dotted for a nested one).
    field: str


_KINDS = {"L": _LOCATION, "Q": _QUEUE, "T": _TASK}


def _route(verb: str, template: str, method: str, body: str = "") -> Route:
    """A route from its rule, with L, Q and T for a location, queue and task name."""
    field, kind, suffix = re.fullmatch(r"\{([a-z_.]+)=([LQT])\}(.*)", template).groups()  # type: ignore[union-attr]
    path = re.compile(f"{re.escape(PREFIX)}(?P<name>{_KINDS[kind]}){re.escape(suffix)}")
    return Route(verb, path, method, body, field)


ROUTES: tuple[Route, ...] = (
    _route("POST", "{parent=L}/queues", "CreateQueue", "queue"),
    _route("GET", "{parent=L}/queues", "ListQueues"),
    _route("GET", "{name=Q}", "GetQueue"),
    _route("PATCH", "{queue.name=Q}", "UpdateQueue", "queue"),
    _route("DELETE", "{name=Q}", "DeleteQueue"),
    _route("POST", "{name=Q}:purge", "PurgeQueue", "*"),
    _route("POST", "{name=Q}:pause", "PauseQueue", "*"),
    _route("POST", "{name=Q}:resume", "ResumeQueue", "*"),
    _route("POST", "{resource=Q}:getIamPolicy", "GetIamPolicy", "*"),
    _route("POST", "{resource=Q}:setIamPolicy", "SetIamPolicy", "*"),
    _route("POST", "{resource=Q}:testIamPermissions", "TestIamPermissions", "*"),
    _route("POST", "{parent=Q}/tasks", "CreateTask", "*"),
    _route("GET", "{parent=Q}/tasks", "ListTasks"),
    _route("POST", "{parent=Q}/tasks:lease", "LeaseTasks", "*"),
    _route("GET", "{name=T}", "GetTask"),
    _route("DELETE", "{name=T}", "DeleteTask"),
    _route("POST", "{name=T}:renewLease", "RenewLease", "*"),
    _route("POST", "{name=T}:cancelLease", "CancelLease", "*"),
    _route("POST", "{name=T}:acknowledge", "AcknowledgeTask", "*"),
    _route("POST", "{name=T}:run", "RunTask", "*"),
    # The one rule outside /v2beta2/, naming no resource; its body (an HttpBody) is not read.
    Route("POST", re.compile(f"(?P<name>){re.escape(UPLOAD_PATH)}"), "UploadQueueYaml", "", ""),
)


def _find(verb: str, path: str) -> tuple[Route, str]:
    for route in ROUTES:
        match = route.path.fullmatch(path)
        if match is not None and route.verb == verb and route.method in METHODS:
            return route, match.group("name")
    raise NotFound(f"No Cloud Tasks v2beta2 method {verb} {path}")


def _query(args: Any) -> dict[str, Any]:
    """The query string as a JSON object of the request's leftover fields; a name that
    is both a field and a message (``filter=x&filter.y=1``) is INVALID_ARGUMENT."""
    fields: dict[str, Any] = {}
    for key in args:
        if key.startswith("$") or key in _GLOBAL:
            continue
        values = args.getlist(key)
        *parents, last = key.split(".")
        node = fields
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidArgument(f"Invalid query parameter {key!r}: {part!r} is not a message")
        if last in node:
            raise InvalidArgument(f"Invalid query parameter {key!r}: {last!r} is given as a message and a value")
        node[last] = values if len(values) > 1 else values[0]
    return fields


def _set(message: Any, dotted: str, value: str) -> None:
    if not dotted:
        return
    *parents, last = dotted.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, last, value)


def _masks(message: Any, fields: dict[str, Any]) -> None:
    """Move the query's FieldMasks into ``message`` as the paths they list, as written.

    JSON's FieldMask is camelCase only; Google's front end also takes the protos' spelling
    (``updateMask=retry_config.max_attempts``), so the paths are left to the handler
    (`bridge.cloudtasks.convert.mask_paths`), which reads both.
    """
    for field in message.DESCRIPTOR.fields:
        if field.message_type is None or field.message_type.full_name != "google.protobuf.FieldMask":
            continue
        for key in (field.json_name, field.name):
            if key not in fields:
                continue
            value = fields.pop(key)
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(text, str) for text in values):
                raise InvalidArgument(f"Invalid {key}: expected a comma-separated list of field paths")
            mask = getattr(message, field.name)
            mask.SetInParent()
            mask.paths.extend(path for text in values for path in text.split(",") if path)


def _message(route: Route, name: str, max_body_bytes: int) -> Any:
    message = METHODS[route.method].request()
    data = body_bytes(request.environ, max_body_bytes) if route.body else b""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InvalidArgument("Invalid JSON payload: the body is not UTF-8 text") from None
    try:
        if text.strip():
            target = message if route.body == "*" else getattr(message, route.body)
            json_format.Parse(text, target)
        fields = _query(request.args)
        _masks(message, fields)
        json_format.ParseDict(fields, message)
    except json_format.ParseError as exc:
        raise InvalidArgument(f"Invalid JSON payload: {exc}") from None
    _set(message, route.field, name)
    return message


def _integer_enums() -> bool:
    """Whether the caller asked for enums as numbers (``$alt=json;enum-encoding=int``, as
    Google's own client libraries do); names otherwise, as Google's front end writes them."""
    return any("enum-encoding=int" in request.args.get(key, "") for key in ("$alt", "alt"))


def render_error(error: ApiError) -> Response:
    """``error`` as Google's JSON error of the API, with the HTTP status of its code."""
    code = code_of(error)
    status = HTTP_STATUS[code]
    body = orjson.dumps({"error": {"code": status, "message": error.message, "status": code.name}})
    return Response(body, status=status, mimetype="application/json")


def _view(front: Front, max_body_bytes: int) -> Any:
    def view(path: str) -> Response:
        try:
            route, name = _find(request.method, request.path)
            request.environ[logs.METHOD] = f"{SERVICE}/{route.method}"
            message = _message(route, name, max_body_bytes)
            response = invoke(front, METHODS[route.method], message, request.headers.get("Authorization"))
        except Exception as exc:  # noqa: BLE001 - the gate's one mapping, rendered here
            error = as_api_error(exc)
            request.environ[logs.REASON] = error.reason
            return render_error(error)
        text = json_format.MessageToJson(response, use_integers_for_enums=_integer_enums(), indent=None)
        return Response(text, mimetype="application/json")

    return view


def register(app: Flask, front: Front, max_body_bytes: int) -> None:
    """Serve the front's routes on ``app``; bodies over ``max_body_bytes`` are a 413."""
    view = _view(front, max_body_bytes)
    verbs = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    app.add_url_rule(PREFIX + "<path:path>", "cloudtasks_v2beta2", view, methods=verbs)
    app.add_url_rule(UPLOAD_PATH, "cloudtasks_v2beta2_upload", view, methods=["POST"], defaults={"path": UPLOAD_PATH})
