"""What Google's own taskqueue v1beta2 Discovery document tells a client, as data.

Google's document (the copy kept in ``googleapis/google-api-go-client`` at
``taskqueue/v1beta2/taskqueue-api.json``, revision 20130318; the clients generated from
later revisions show the same methods, parameters and types) is not copied here: only
the facts a client acts on are, written down in this project's terms. They are the methods (resource,
name, id, HTTP method, path, parameter order, request and response schema), every
parameter (type, format, location, required, repeated, enum, pattern), every schema
property (type, format, reference, items) and the service paths, batch path included.
Descriptions, defaults, icons, ``minimum``/``maximum`` (which no client enforces) and
OAuth scopes are not client-visible contract and are left out.

`differences` lists what a served document changes in those facts; `document` builds a
Discovery document from the facts alone, for a client that knows only what Google's
document said.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

#: The service: the paths the client builds URLs and batches from.
SERVICE = {
    "name": "taskqueue",
    "version": "v1beta2",
    "protocol": "rest",
    "servicePath": "taskqueue/v1beta2/projects/",
    "basePath": "/taskqueue/v1beta2/projects/",
    "batchPath": "batch",
}

#: Keys a served document may carry beside the facts because no client acts on them.
DESCRIPTIVE = {"description", "enumDescriptions", "default", "minimum", "maximum", "id", "scopes"}


def param(
    type_: str,
    location: str,
    *,
    required: bool = False,
    repeated: bool = False,
    format_: str | None = None,
    enum: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """A parameter as a client sees it; absent qualities are None or False, never missing."""
    return {
        "type": type_,
        "location": location,
        "required": required,
        "repeated": repeated,
        "format": format_,
        "enum": enum,
        "pattern": None,
    }


_QUERY_TEXT = param("string", "query")
_IN_PATH = param("string", "path", required=True)
_LEASE_SECONDS = param("integer", "query", required=True, format_="int32")

#: Parameters every method takes.
GLOBAL_PARAMETERS = {
    "alt": param("string", "query", enum=("json",)),
    "fields": _QUERY_TEXT,
    "key": _QUERY_TEXT,
    "oauth_token": _QUERY_TEXT,
    "prettyPrint": param("boolean", "query"),
    "quotaUser": _QUERY_TEXT,
    "userIp": _QUERY_TEXT,
}


def method(
    id_: str,
    http_method: str,
    path: str,
    order: tuple[str, ...],
    params: Mapping[str, dict[str, Any]],
    request: str | None = None,
    response: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id_,
        "httpMethod": http_method,
        "path": path,
        "parameterOrder": order,
        "request": request,
        "response": response,
        "parameters": dict(params),
    }


_QUEUE = {"project": _IN_PATH, "taskqueue": _IN_PATH}
_TASK = {**_QUEUE, "task": _IN_PATH}
_QUEUE_PATH = "{project}/taskqueues/{taskqueue}"
_TASK_PATH = _QUEUE_PATH + "/tasks/{task}"
_RENEW = {**_TASK, "newLeaseSeconds": _LEASE_SECONDS}
_RENEW_ORDER = ("project", "taskqueue", "task", "newLeaseSeconds")

#: Methods by "resource.name" (how a client calls them: ``api.tasks().lease(...)``).
METHODS = {
    "taskqueues.get": method(
        "taskqueue.taskqueues.get",
        "GET",
        _QUEUE_PATH,
        ("project", "taskqueue"),
        {**_QUEUE, "getStats": param("boolean", "query")},
        response="TaskQueue",
    ),
    "tasks.delete": method("taskqueue.tasks.delete", "DELETE", _TASK_PATH, ("project", "taskqueue", "task"), _TASK),
    "tasks.get": method(
        "taskqueue.tasks.get", "GET", _TASK_PATH, ("project", "taskqueue", "task"), _TASK, response="Task"
    ),
    "tasks.insert": method(
        "taskqueue.tasks.insert",
        "POST",
        _QUEUE_PATH + "/tasks",
        ("project", "taskqueue"),
        _QUEUE,
        request="Task",
        response="Task",
    ),
    "tasks.lease": method(
        "taskqueue.tasks.lease",
        "POST",
        _QUEUE_PATH + "/tasks/lease",
        ("project", "taskqueue", "numTasks", "leaseSecs"),
        {
            **_QUEUE,
            "numTasks": param("integer", "query", required=True, format_="int32"),
            "leaseSecs": _LEASE_SECONDS,
            "groupByTag": param("boolean", "query"),
            "tag": _QUERY_TEXT,
        },
        response="Tasks",
    ),
    "tasks.list": method(
        "taskqueue.tasks.list", "GET", _QUEUE_PATH + "/tasks", ("project", "taskqueue"), _QUEUE, response="Tasks2"
    ),
    "tasks.patch": method(
        "taskqueue.tasks.patch", "PATCH", _TASK_PATH, _RENEW_ORDER, _RENEW, request="Task", response="Task"
    ),
    "tasks.update": method(
        "taskqueue.tasks.update", "POST", _TASK_PATH, _RENEW_ORDER, _RENEW, request="Task", response="Task"
    ),
}


def prop(type_: str, format_: str | None = None) -> dict[str, Any]:
    return {"type": type_, "format": format_}


def array_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def ref(schema: str) -> dict[str, Any]:
    return {"$ref": schema}


def object_of(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


_TEXT = prop("string")
_INT32 = prop("integer", "int32")
#: int64 travels as a JSON string.
_INT64 = prop("string", "int64")
_EMAILS = array_of(prop("string"))

#: Schemas: every property with its type and format, nested objects and array items included.
SCHEMAS = {
    "Task": object_of(
        {
            "enqueueTimestamp": _INT64,
            "id": _TEXT,
            "kind": _TEXT,
            "leaseTimestamp": _INT64,
            "payloadBase64": _TEXT,
            "queueName": _TEXT,
            "retry_count": _INT32,
            "tag": _TEXT,
        }
    ),
    "TaskQueue": object_of(
        {
            "acl": object_of({"adminEmails": _EMAILS, "consumerEmails": _EMAILS, "producerEmails": _EMAILS}),
            "id": _TEXT,
            "kind": _TEXT,
            "maxLeases": _INT32,
            "stats": object_of(
                {"leasedLastHour": _INT64, "leasedLastMinute": _INT64, "oldestTask": _INT64, "totalTasks": _INT32}
            ),
        }
    ),
    "Tasks": object_of({"items": array_of(ref("Task")), "kind": _TEXT}),
    "Tasks2": object_of({"items": array_of(ref("Task")), "kind": _TEXT}),
}


# -- reading a document -------------------------------------------------------------


def _param_facts(doc: Mapping[str, Any]) -> dict[str, Any]:
    enum = doc.get("enum")
    return {
        "type": doc.get("type"),
        "location": doc.get("location"),
        "required": bool(doc.get("required")),
        "repeated": bool(doc.get("repeated")),
        "format": doc.get("format"),
        "enum": tuple(enum) if enum is not None else None,
        "pattern": doc.get("pattern"),
    }


def _schema_facts(doc: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in doc:
        return {"$ref": doc["$ref"]}
    facts: dict[str, Any] = {"type": doc.get("type")}
    if "properties" in doc:
        facts["properties"] = {name: _schema_facts(value) for name, value in doc["properties"].items()}
    elif "items" in doc:
        facts["items"] = _schema_facts(doc["items"])
    else:
        facts["format"] = doc.get("format")
    return facts


def _unexpected_keys(where: str, doc: Mapping[str, Any], known: set[str]) -> Iterator[str]:
    for key in sorted(set(doc) - known - DESCRIPTIVE):
        yield f"{where}: carries {key!r}, which Google's document has not"


def _compare(where: str, served: Mapping[str, Any], google: Mapping[str, Any]) -> Iterator[str]:
    for key in sorted(set(served) | set(google)):
        if key not in google:
            yield f"{where}: {key!r} is extra"
        elif key not in served:
            yield f"{where}: {key!r} is missing"
        elif served[key] != google[key]:
            yield f"{where}: {key} is {served[key]!r} where Google's is {google[key]!r}"


_PARAM_KEYS = {"type", "location", "required", "repeated", "format", "enum", "pattern"}
_METHOD_KEYS = {"id", "httpMethod", "path", "parameterOrder", "request", "response", "parameters"}
_SCHEMA_KEYS = {"type", "format", "properties", "items", "$ref"}


def _schema_keys(where: str, doc: Mapping[str, Any]) -> Iterator[str]:
    yield from _unexpected_keys(where, doc, _SCHEMA_KEYS)
    for name, value in doc.get("properties", {}).items():
        yield from _schema_keys(f"{where}.{name}", value)
    if "items" in doc:
        yield from _schema_keys(f"{where}[]", doc["items"])


def differences(served: Mapping[str, Any]) -> list[str]:
    """Every client-visible way ``served`` departs from Google's document; [] when none."""
    found: list[str] = []
    found += _compare("service", {key: served.get(key) for key in SERVICE}, SERVICE)
    found += _compare(
        "global parameters", {n: _param_facts(d) for n, d in served.get("parameters", {}).items()}, GLOBAL_PARAMETERS
    )
    for name, doc in served.get("parameters", {}).items():
        found += _unexpected_keys(f"global parameter {name}", doc, _PARAM_KEYS)

    methods = {
        f"{resource}.{name}": doc
        for resource, body in served.get("resources", {}).items()
        for name, doc in body.get("methods", {}).items()
    }
    extra_resources = [
        name for name, body in served.get("resources", {}).items() if set(body) - {"methods", "description"}
    ]
    found += [f"resource {name}: has nested resources or other keys" for name in extra_resources]
    found += [f"method {name}: extra" for name in sorted(set(methods) - set(METHODS))]
    found += [f"method {name}: missing" for name in sorted(set(METHODS) - set(methods))]
    for name in sorted(set(methods) & set(METHODS)):
        doc, google = methods[name], METHODS[name]
        facts = {
            "id": doc.get("id"),
            "httpMethod": doc.get("httpMethod"),
            "path": doc.get("path"),
            "parameterOrder": tuple(doc.get("parameterOrder", ())),
            "request": doc.get("request", {}).get("$ref"),
            "response": doc.get("response", {}).get("$ref"),
        }
        found += _compare(f"method {name}", facts, {k: v for k, v in google.items() if k != "parameters"})
        found += _unexpected_keys(f"method {name}", doc, _METHOD_KEYS)
        params = {p: _param_facts(d) for p, d in doc.get("parameters", {}).items()}
        found += [f"method {name}: parameter {p} is extra" for p in sorted(set(params) - set(google["parameters"]))]
        found += [f"method {name}: parameter {p} is missing" for p in sorted(set(google["parameters"]) - set(params))]
        for p in sorted(set(params) & set(google["parameters"])):
            found += _compare(f"method {name} parameter {p}", params[p], google["parameters"][p])
            found += _unexpected_keys(f"method {name} parameter {p}", doc["parameters"][p], _PARAM_KEYS)

    schemas = served.get("schemas", {})
    found += [f"schema {name}: extra" for name in sorted(set(schemas) - set(SCHEMAS))]
    found += [f"schema {name}: missing" for name in sorted(set(SCHEMAS) - set(schemas))]
    for name in sorted(set(schemas) & set(SCHEMAS)):
        served_facts, google_facts = _schema_facts(schemas[name]), _schema_facts(SCHEMAS[name])
        found += _compare_schema(f"schema {name}", served_facts, google_facts)
        found += _schema_keys(f"schema {name}", schemas[name])
    return found


def _compare_schema(where: str, served: Mapping[str, Any], google: Mapping[str, Any]) -> Iterator[str]:
    served_props, google_props = served.get("properties"), google.get("properties")
    if served_props is None or google_props is None:
        if served_props is not None or google_props is not None:
            yield f"{where}: an object on one side only"
        elif "items" in served and "items" in google:
            yield from _compare_schema(f"{where}[]", served["items"], google["items"])
        elif served != google:
            yield f"{where}: is {served!r} where Google's is {google!r}"
        return
    if served.get("type") != google.get("type"):
        yield f"{where}: type {served.get('type')!r} where Google's is {google.get('type')!r}"
    for name in sorted(set(served_props) | set(google_props)):
        if name not in google_props:
            yield f"{where}.{name}: extra"
        elif name not in served_props:
            yield f"{where}.{name}: missing"
        else:
            yield from _compare_schema(f"{where}.{name}", served_props[name], google_props[name])


# -- writing a document -------------------------------------------------------------


def _param_doc(facts: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": facts["type"], "location": facts["location"]}
    if facts["required"]:
        doc["required"] = True
    if facts["repeated"]:
        doc["repeated"] = True
    if facts["format"]:
        doc["format"] = facts["format"]
    if facts["enum"]:
        doc["enum"] = list(facts["enum"])
    return doc


def _schema_doc(facts: Mapping[str, Any]) -> dict[str, Any]:
    doc = {key: value for key, value in facts.items() if value is not None and key not in ("properties", "items")}
    if "properties" in facts:
        doc["properties"] = {name: _schema_doc(value) for name, value in facts["properties"].items()}
    if "items" in facts:
        doc["items"] = _schema_doc(facts["items"])
    return doc


def document(root_url: str) -> dict[str, Any]:
    """A Discovery document holding the facts alone, its URLs at ``root_url`` (ends with '/')."""
    resources: dict[str, Any] = {}
    for qualified, facts in METHODS.items():
        resource, name = qualified.split(".")
        doc: dict[str, Any] = {
            "id": facts["id"],
            "httpMethod": facts["httpMethod"],
            "path": facts["path"],
            "parameterOrder": list(facts["parameterOrder"]),
            "parameters": {p: _param_doc(f) for p, f in facts["parameters"].items()},
        }
        for key in ("request", "response"):
            if facts[key]:
                doc[key] = {"$ref": facts[key]}
        resources.setdefault(resource, {"methods": {}})["methods"][name] = doc
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": f"{SERVICE['name']}:{SERVICE['version']}",
        **SERVICE,
        "rootUrl": root_url,
        "baseUrl": root_url + SERVICE["servicePath"],
        "parameters": {name: _param_doc(facts) for name, facts in GLOBAL_PARAMETERS.items()},
        "schemas": {name: {"id": name, **_schema_doc(facts)} for name, facts in SCHEMAS.items()},
        "resources": resources,
    }
