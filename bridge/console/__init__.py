"""The web console at ``/console/`` and the JSON admin API under ``/console/api/``.

Pages (`bridge.console.pages`) and the JSON API (`bridge.console.api`) read like
`bridge.taskqueue.handlers`: translate the request, call the backend's admin verbs, render. What both
need lives here: the queue a URL names and the actions, one table for both. Who may
call them is `bridge.console.access`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, g, redirect, url_for
from werkzeug.wrappers import Response

from backends.base import Backend, Queue, QueueInfo, TaskPage, TaskState, state_of
from backends.errors import ApiError, Duplicate, InvalidArgument, NotFound
from bridge.ops.metrics import sampled_queues

if TYPE_CHECKING:
    from bridge.app import Bridge

#: Where the pages are, and the JSON API among them.
PREFIX = "/console/"
API_PREFIX = "/console/api/"
#: Tasks on one page of a queue.
PAGE_SIZE = 50
US = 1_000_000


def now_us() -> int:
    return time.time_ns() // 1000


#: The method id the console's calls are checked as: one no ACL names, so admins only.
METHOD_ID = "console"


def queue_of(bridge: Bridge, project: str, name: str) -> Queue:
    """The queue a console URL names, through the gate's admission: 404 for a project
    not served or a queue queue.yaml does not declare, 403 for a caller not an admin."""
    return bridge.admission.queue(g.get("identity"), project, name, METHOD_ID)[0]


def served(bridge: Bridge, project: str) -> bool:
    """Whether the bridge serves ``project`` (a key: no partition prefix)."""
    return not bridge.queues.projects or project in bridge.queues.projects


@dataclass(frozen=True)
class QueueRow:
    queue: Queue
    info: QueueInfo | None
    #: Why the backend could not describe it, when it could not.
    error: str | None = None


def known_queues(bridge: Bridge, project: str | None = None) -> list[Queue]:
    """Every queue the backend knows, and queue.yaml's, sorted by (project, name).

    A backend may list only some projects unasked (Cloud Tasks serving every v1 project
    in its namesake lists its own location's), so the projects this process served are
    listed too. Where it cannot list at all: the queues this process served and
    queue.yaml's, as the metrics sample them. A queue queue.yaml declares exists from the
    start, used or not, in every project known here: the one asked for, those served
    (``application:``, ``--projects``), and those whose queues the backend holds (a
    queue.yaml without a project names none until a call uses one: `unplaced_queues`).
    """
    key = bridge.admission.project(project) if project else None
    backend = bridge.backend
    sampled = sampled_queues(bridge.meter, bridge.queues)
    if "list_queues" not in backend.supports:
        found = [queue for queue in sampled if key is None or queue.project == key]
    else:
        projects = [key] if key else [None, *sorted({queue.project for queue in sampled})]
        found = [queue for name in projects for queue in backend.list_queues(name)]
    places = {key} if key else {*bridge.queues.projects, *(queue.project for queue in found)}
    found += [Queue(place, config.name, config.max_leases) for place in places for config in bridge.queues.declared()]
    # Storage may hold other projects' queues (from before --projects): never shown.
    unique = {(queue.project, queue.name): queue for queue in found if served(bridge, queue.project)}
    return [unique[name] for name in sorted(unique)]


def unplaced_queues(bridge: Bridge, rows: list[QueueRow]) -> list[str]:
    """The queues queue.yaml declares that no project shows yet (a file without
    ``application:``, a bridge without ``--projects``, no call made): named on the page, so
    that a new user sees them before the first insert."""
    if rows:
        return []
    return [config.name for config in bridge.queues.declared()]


def task_page(
    bridge: Bridge, queue: Queue, *, page_size: int, page_token: str | None, tag: str | None, state: TaskState | None
) -> TaskPage:
    """One page of the queue's tasks; where the backend cannot page, the first LIST_LIMIT
    tasks (the v1 list), filtered here."""
    backend = bridge.backend
    if "list_tasks_page" in backend.supports:
        return backend.list_tasks_page(queue, page_size=page_size, page_token=page_token, tag=tag, state=state)
    if page_token:
        raise InvalidArgument("This backend lists only one page of tasks", location="page")
    now = now_us()
    tasks = [
        task
        for task in backend.list_tasks(queue)
        if (tag is None or (task.tag or "") == tag) and (state is None or state_of(task, now) == state)
    ]
    return TaskPage(tasks[:page_size], None)


def queue_rows(bridge: Bridge, project: str | None = None) -> list[QueueRow]:
    """Every queue the backend knows, with its stats (one call each)."""
    rows = []
    for known in known_queues(bridge, project):
        try:
            queue = queue_of(bridge, known.project, known.name)
        except ApiError:
            queue = known  # kept in storage from before queue.yaml dropped it
        try:
            rows.append(QueueRow(queue, bridge.backend.queue_info(queue, with_stats=True)))
        except ApiError as exc:
            rows.append(QueueRow(queue, None, exc.message))
    return rows


# -- actions: one table for the pages and the JSON API --------------------------------


def _purge(backend: Backend, queue: Queue, task: str | None) -> str:
    count = backend.purge_queue(queue)
    if count is None:
        return f"Purged {queue.name}: every task deleted (the backend does not count them)"
    return f"Purged {queue.name}: {count} task{'' if count == 1 else 's'} deleted"


def _pause(backend: Backend, queue: Queue, task: str | None) -> str:
    backend.pause_queue(queue)
    return f"Paused {queue.name}: it accepts tasks and leases none until resumed"


def _resume(backend: Backend, queue: Queue, task: str | None) -> str:
    backend.resume_queue(queue)
    return f"Resumed {queue.name}"


def _clear_tombstones(backend: Backend, queue: Queue, task: str | None) -> str:
    count = backend.clear_tombstones(queue)
    return f"Cleared {count} tombstone{'' if count == 1 else 's'} of {queue.name}: those names can be used again"


def _delete(backend: Backend, queue: Queue, task: str | None) -> str:
    assert task is not None
    backend.delete(queue, task)
    return f"Deleted task {task}"


def _release(backend: Backend, queue: Queue, task: str | None) -> str:
    assert task is not None
    backend.modify_lease(queue, task, 0, None)
    return f"Released the lease of {task}: it can be leased again now"


Action = Callable[[Backend, Queue, "str | None"], str]

#: What the console can do to a queue, and to one task; each returns the message shown.
QUEUE_ACTIONS: dict[str, Action] = {
    "purge": _purge,
    "pause": _pause,
    "resume": _resume,
    "clear-tombstones": _clear_tombstones,
}
TASK_ACTIONS: dict[str, Action] = {"delete": _delete, "release": _release}


def run_action(bridge: Bridge, table: dict[str, Action], name: str, queue: Queue, task: str | None) -> str:
    if name not in table:
        raise InvalidArgument(f"Unknown action {name!r}; known: {', '.join(table)}", location="action")
    # A backend that cannot do the verb raises Unsupported (400), naming itself.
    try:
        return table[name](bridge.backend, queue, task)
    except NotFound:
        if task is not None or queue.name not in {config.name for config in bridge.queues.declared()}:
            raise
    # queue.yaml declares it, so it exists, though the backend has not met it yet.
    with contextlib.suppress(Duplicate):
        bridge.backend.create_queue(queue)
    return table[name](bridge.backend, queue, task)


def register(app: Flask, bridge: Bridge) -> None:
    from bridge.console import api, pages

    app.register_blueprint(pages.blueprint(bridge))
    app.register_blueprint(api.blueprint(bridge))

    def home() -> Response:
        # A person who opens the bridge's address in a browser finds the console.
        return redirect(url_for("console.queues"))

    app.add_url_rule("/", "home", home)
