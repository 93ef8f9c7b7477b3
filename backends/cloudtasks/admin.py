"""The admin verbs of the Cloud Tasks backend, each on the service's own calls.

    list_queues       ListQueues, every page; pull queues only
    create_queue      CreateQueue with pull_target, retry_config.max_attempts, tombstone_ttl
    update_queue      GetQueue (an unknown queue is NotFound), then UpdateQueue of retry_config
    delete_queue      DeleteQueue (the service keeps the name 7 days)
    purge_queue       GetQueue stats.tasks_count, then PurgeQueue
    pause/resume      PauseQueue / ResumeQueue (a paused pull queue refuses LeaseTasks)
    list_tasks_page   ListTasks, every page, sorted, filtered and cut to the budget here

They run whatever ``create_queues`` says: they are an operator's explicit requests.
What the service cannot do is declared, not invented: it keeps no dead letters (it drops
a task after max_attempts silently), no way to free tombstoned names, no per-minute
counts, and no per-state counts (``QueueStats`` leaves them None).

Limits: ListTasks lists "in any order", so a page in ETA order reads the whole queue,
one call per 1,000 tasks, and keeps the page's tasks only; the state filter uses this
machine's clock. A page's byte budget is applied to the tasks kept, after the service
sent them (with their payloads, when asked for), which only the bridge's own answer
is spared. purge_queue's count is the service's ``tasks_count`` just before the
purge, an estimate. Without a project, list_queues lists the location of the URL's
project (with ``projects=*`` other projects cannot be enumerated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, field_mask_pb2

from backends.base import Queue, Task, TaskPage, TaskState, first_within, state_of
from backends.cloudtasks.errors import missing_queue, translated
from backends.errors import Duplicate, InvalidArgument, NotFound
from backends.paging import position, position_of, token_after

if TYPE_CHECKING:
    from backends.cloudtasks.backend import CloudTasksBackend

#: The admin verbs the Cloud Tasks backend cannot do, and why (``Backend.unsupported_reasons``).
UNSUPPORTED = {
    "dead_letters": "Cloud Tasks keeps no dead letters: it drops a task after max_attempts without a trace",
    "clear_tombstones": "Cloud Tasks keeps deleted names for the queue's tombstone_ttl; they cannot be freed",
    "activity": "Cloud Tasks keeps no per-minute counts of inserts, leases and deletes",
}
#: The largest ListTasks page the service gives.
TASKS_PAGE = 1000


def retry_config(max_leases: int | None) -> ct.RetryConfig:
    """maxLeases as Cloud Tasks says it (None or 0: unlimited)."""
    if max_leases:
        return ct.RetryConfig(max_attempts=max_leases)
    return ct.RetryConfig(unlimited_attempts=True)


def max_leases_of(queue: ct.Queue) -> int | None:
    retry = ct.Queue.pb(queue).retry_config
    attempts = retry.max_attempts if retry.WhichOneof("num_attempts") == "max_attempts" else 0
    return attempts if attempts > 0 else None


def pull_queue(name: str, max_leases: int | None, tombstone_seconds: int) -> ct.Queue:
    """The definition of a pull queue the bridge creates."""
    return ct.Queue(
        name=name,
        pull_target=ct.PullTarget(),
        retry_config=retry_config(max_leases),
        tombstone_ttl=duration_pb2.Duration(seconds=tombstone_seconds),
    )


def list_queues(backend: CloudTasksBackend, project: str | None) -> list[Queue]:
    where = backend.where
    if project is None:
        served = where.v1_projects
        # The v1 name of the URL's project: itself, or its first alias.
        project = where.project if served is None or where.project in served else min(served)
    try:
        parent = where.serving(project)
    except (NotFound, InvalidArgument):  # a project it does not serve, or cannot name, has none here
        return []
    request = ct.ListQueuesRequest(parent=parent)
    found: list[Queue] = []
    with translated("listing queues"):
        while True:
            page = backend._invoke(backend.client.list_queues, request, idempotent=True)
            for message in page.queues:
                if "pull_target" in message:
                    found.append(Queue(project, message.name.rsplit("/", 1)[1], max_leases_of(message)))
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    return sorted(found, key=lambda q: q.name)


def create_queue(backend: CloudTasksBackend, queue: Queue) -> None:
    name = backend.queue_name(queue)
    definition = pull_queue(name, queue.max_leases, backend.tombstone_seconds)
    request = ct.CreateQueueRequest(parent=name.rsplit("/queues/", 1)[0], queue=definition)
    with translated("creating the queue", queue=queue):
        try:
            backend._invoke(backend.client.create_queue, request, idempotent=True, lost_reply=created_already)
        except gexc.AlreadyExists as exc:
            raise Duplicate(f"Queue {queue.name} already exists", location="taskqueue") from exc


def update_queue(backend: CloudTasksBackend, queue: Queue) -> None:
    name = backend.queue_name(queue)
    # UpdateQueue would create a missing queue; the contract says NotFound.
    _read(backend, queue, [])
    change = ct.Queue(name=name, retry_config=retry_config(queue.max_leases))
    request = ct.UpdateQueueRequest(queue=change, update_mask=field_mask_pb2.FieldMask(paths=["retry_config"]))
    with translated("updating the queue", queue=queue):
        backend._invoke(backend.client.update_queue, request, idempotent=True)


def delete_queue(backend: CloudTasksBackend, queue: Queue) -> None:
    request = ct.DeleteQueueRequest(name=backend.queue_name(queue))
    with translated("deleting the queue", queue=queue):
        backend._invoke(backend.client.delete_queue, request, idempotent=True, lost_reply=gone_already)


def purge_queue(backend: CloudTasksBackend, queue: Queue) -> int:
    count = int(ct.Queue.pb(_read(backend, queue, ["stats"])).stats.tasks_count)
    with translated("purging the queue", queue=queue):
        backend._invoke(backend.client.purge_queue, ct.PurgeQueueRequest(name=backend.queue_name(queue)))
    return count


def set_paused(backend: CloudTasksBackend, queue: Queue, paused: bool) -> None:
    name = backend.queue_name(queue)
    with translated("pausing the queue" if paused else "resuming the queue", queue=queue):
        if paused:
            backend._invoke(backend.client.pause_queue, ct.PauseQueueRequest(name=name), idempotent=True)
        else:
            backend._invoke(backend.client.resume_queue, ct.ResumeQueueRequest(name=name), idempotent=True)


def list_tasks_page(
    backend: CloudTasksBackend,
    queue: Queue,
    *,
    page_size: int,
    page_token: str | None,
    tag: str | None,
    state: TaskState | None,
    with_payload: bool,
    max_bytes: int,
    task_bytes: int,
    task_of: Callable[[ct.Task], Task],
) -> TaskPage:
    """task_of: the backend's reading of a Cloud Tasks task."""
    after = "" if page_token is None else position_of(page_token)
    now_us = time.time_ns() // 1000
    view = ct.Task.View.FULL if with_payload else ct.Task.View.BASIC
    request = ct.ListTasksRequest(parent=backend.queue_name(queue), response_view=view, page_size=TASKS_PAGE)
    kept: list[Task] = []
    with translated("listing the queue", queue=queue):
        while True:
            page = backend._invoke(backend.client.list_tasks, request, idempotent=True)
            for message in page.tasks:
                task = task_of(message)
                if tag is not None and (task.tag or "") != tag:
                    continue
                if (state is not None and state_of(task, now_us) != state) or position(task) <= after:
                    continue
                kept.append(task)
            # Only the first page_size + 1 can matter: one more says that more follow.
            kept = sorted(kept, key=position)[: page_size + 1]
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    tasks = kept[:page_size]
    if max_bytes:
        tasks = first_within(tasks, max_bytes, task_bytes)
    return TaskPage(tasks, token_after(tasks[-1]) if len(kept) > len(tasks) else None)


def _read(backend: CloudTasksBackend, queue: Queue, paths: list[str]) -> ct.Queue:
    """GetQueue, with these paths of the queue besides its name; NotFound when unknown."""
    request = ct.GetQueueRequest(name=backend.queue_name(queue))
    request.read_mask = field_mask_pb2.FieldMask(paths=["name", *paths])
    with translated("reading the queue", queue=queue):
        try:
            return backend._invoke(backend.client.get_queue, request, idempotent=True)
        except gexc.NotFound as exc:
            raise missing_queue(queue.name) from exc


def created_already(exc: gexc.GoogleAPICallError) -> None:
    """A retried create that met ALREADY_EXISTS: the first try made it (its reply lost)."""
    if not isinstance(exc, gexc.AlreadyExists):
        raise exc


def gone_already(exc: gexc.GoogleAPICallError) -> None:
    """A retried delete that met NOT_FOUND: the first try deleted it (its reply lost);
    anything else stands."""
    if not isinstance(exc, gexc.NotFound):
        raise exc
