"""The console's JSON admin API, for the queue CLI (``python -m bridge queues``) and scripts.

    GET  /console/api/queues[?project=P]                              every queue, with stats
    GET  /console/api/projects/P/queues/Q                             one queue, with activity
    GET  /console/api/projects/P/queues/Q/tasks[?tag&state&pageSize&pageToken]
    GET  /console/api/projects/P/queues/Q/dead-letters
    POST /console/api/projects/P/queues/Q/actions/{purge,pause,resume,clear-tombstones}
    POST /console/api/projects/P/queues/Q/tasks/T/actions/{delete,release}

Field names follow the v1 API's style (camelCase, times in µs as strings), counts a
backend cannot know are null. Errors are Google's envelope, as everywhere.
Inserting and reading one task are the v1 API's own methods.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, g, jsonify, request

from backends.base import PAGE_LIMIT, MinuteActivity, Queue, QueueInfo, Task, TaskState, state_of
from backends.errors import InvalidArgument
from bridge.console import (
    QUEUE_ACTIONS,
    TASK_ACTIONS,
    now_us,
    queue_of,
    queue_rows,
    run_action,
    task_page,
    unplaced_queues,
)
from bridge.console.access import Access

if TYPE_CHECKING:
    from bridge.app import Bridge

DEFAULT_PAGE_SIZE = 100


def blueprint(bridge: Bridge) -> Blueprint:
    api = Blueprint("console_api", __name__, url_prefix="/console/api")
    access = Access(bridge.settings, bridge.authenticator)
    backend = bridge.backend

    @api.before_request
    def admit() -> None:
        g.identity = access.identify(request, api=True)
        if request.method == "POST":
            access.check_action(request, api=True)

    @api.route("/queues")
    def queues() -> Response:
        rows = queue_rows(bridge, request.args.get("project") or None)
        resource: dict[str, Any] = {"queues": [_queue_json(row.queue, row.info, row.error) for row in rows]}
        unplaced = unplaced_queues(bridge, rows)
        if unplaced:
            # Declared in queue.yaml, but no project is known to show them under yet.
            resource["declared"] = unplaced
        return jsonify(resource)

    @api.route("/projects/<project>/queues/<taskqueue>")
    def queue(project: str, taskqueue: str) -> Response:
        queue = queue_of(bridge, project, taskqueue)
        resource = _queue_json(queue, backend.queue_info(queue, with_stats=True))
        if "activity" in backend.supports:
            resource["activity"] = [_minute_json(minute) for minute in backend.activity(queue)]
        return jsonify(resource)

    @api.route("/projects/<project>/queues/<taskqueue>/tasks")
    def tasks(project: str, taskqueue: str) -> Response:
        queue = queue_of(bridge, project, taskqueue)
        args = request.args
        state_name = args.get("state") or None
        try:
            state = TaskState(state_name) if state_name else None
        except ValueError:
            raise InvalidArgument(f"state must be one of {', '.join(TaskState)}", location="state") from None
        size = args.get("pageSize", str(DEFAULT_PAGE_SIZE))
        if not size.isdecimal() or not 1 <= int(size) <= PAGE_LIMIT:
            raise InvalidArgument(f"pageSize must be a whole number from 1 to {PAGE_LIMIT}", location="pageSize")
        page_size = int(size)
        page = task_page(
            bridge,
            queue,
            page_size=page_size,
            page_token=args.get("pageToken") or None,
            tag=args.get("tag"),
            state=state,
        )
        now = now_us()
        resource: dict[str, Any] = {"tasks": [_task_json(task, now) for task in page.tasks]}
        if page.next_page_token:
            resource["nextPageToken"] = page.next_page_token
        return jsonify(resource)

    @api.route("/projects/<project>/queues/<taskqueue>/dead-letters")
    def dead_letters(project: str, taskqueue: str) -> Response:
        letters = backend.dead_letters(queue_of(bridge, project, taskqueue))
        return jsonify({"deadLetters": [_camel(asdict(letter)) for letter in letters]})

    @api.route("/projects/<project>/queues/<taskqueue>/actions/<action>", methods=["POST"])
    def queue_action(project: str, taskqueue: str, action: str) -> Response:
        queue = queue_of(bridge, project, taskqueue)
        return jsonify({"message": run_action(bridge, QUEUE_ACTIONS, action, queue, None)})

    @api.route("/projects/<project>/queues/<taskqueue>/tasks/<task>/actions/<action>", methods=["POST"])
    def task_action(project: str, taskqueue: str, task: str, action: str) -> Response:
        queue = queue_of(bridge, project, taskqueue)
        return jsonify({"message": run_action(bridge, TASK_ACTIONS, action, queue, task)})

    return api


def _camel(values: dict[str, Any]) -> dict[str, Any]:
    """snake_case keys to the API's camelCase; times (``*_us``) as int64 strings."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        head, *rest = key.split("_")
        if key.endswith("_us") and value is not None:
            value = str(value)
        out[head + "".join(part.title() for part in rest)] = value
    return out


def _queue_json(queue: Queue, info: QueueInfo | None, error: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"project": queue.project, "name": queue.name}
    if info is not None:
        resource["maxLeases"] = info.max_leases
        resource["paused"] = info.paused
        if info.stats is not None:
            resource["stats"] = _camel(asdict(info.stats))
    if error is not None:
        resource["error"] = error
    return resource


def _task_json(task: Task, now: int) -> dict[str, Any]:
    return {
        "id": task.id,
        "tag": task.tag,
        "enqueueUs": str(task.enqueue_us),
        "etaUs": str(task.eta_us),
        "leases": task.retry_count,
        "state": str(state_of(task, now)),
    }


def _minute_json(minute: MinuteActivity) -> dict[str, Any]:
    return _camel(asdict(minute))
