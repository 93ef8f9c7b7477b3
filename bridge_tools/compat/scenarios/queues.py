"""Scenarios of the queue and of the project: taskqueues.get and its stats, partition
prefixes, partial responses."""

from __future__ import annotations

from backends.limits import US
from bridge_tools.compat.rules import SecondsOf, ZeroOrAbsent
from bridge_tools.compat.scenarios.base import bare_project, count, now_us, queue_json, scenario
from bridge_tools.compat.session import Session, b64


@scenario("queue-get")
def queue_get(s: Session) -> None:
    """taskqueues.get names the queue as called; stats only with getStats, empty ones at 0."""
    s.call("get", s.queues.get(project=s.project, taskqueue=s.queue), s.ok(queue_json(s)))
    stats = {
        "totalTasks": 0,
        "oldestTask": ZeroOrAbsent(),
        "leasedLastMinute": count(s, 0),
        "leasedLastHour": count(s, 0),
    }
    request = s.queues.get(project=s.project, taskqueue=s.queue, getStats=True)
    s.call("get-stats-empty", request, s.ok(queue_json(s, stats=stats)))


@scenario("queue-stats")
def queue_stats(s: Session) -> None:
    """Stats count live tasks, leased or not, give the oldest ETA in seconds and real lease counts."""
    a, b = s.insert("a"), s.insert("b")
    s.insert("later", eta_us=now_us() + 3600 * US)
    s.lease("lease", [a], num=1)
    stats = {"totalTasks": 3, "oldestTask": SecondsOf("b.eta"), "leasedLastMinute": count(s, 1)}
    stats["leasedLastHour"] = count(s, 1)
    request = s.queues.get(project=s.project, taskqueue=s.queue, getStats=True)
    s.call("stats", request, s.ok(queue_json(s, stats=stats)))
    s.delete("delete-b", b)
    stats.update(totalTasks=2, oldestTask=SecondsOf("a.eta"))
    request = s.queues.get(project=s.project, taskqueue=s.queue, getStats=True)
    s.call("stats-after-delete", request, s.ok(queue_json(s, stats=stats)))


@scenario("partition-prefixes")
def partition_prefixes(s: Session) -> None:
    """s~app, app, e~app and dev~app name one queue; responses echo the form called."""
    bare = bare_project(s.project)
    a = s.insert("a", project=bare)
    s.get("get-e-prefix", a, project=f"e~{bare}")
    s.list_tasks("list-as-configured", [a])
    s.lease("lease-dev-prefix", [a], project=f"dev~{bare}")
    request = s.queues.get(project=f"s~{bare}", taskqueue=s.queue, getStats=True)
    stats = {"totalTasks": 1, "oldestTask": SecondsOf("a.eta"), "leasedLastMinute": count(s, 1)}
    stats["leasedLastHour"] = count(s, 1)
    s.call("queue-s-prefix", request, s.ok(queue_json(s, stats=stats, project=f"s~{bare}")))


@scenario("partial-response")
def partial_response(s: Session) -> None:
    """The fields parameter keeps only the fields asked for, in every method."""
    name = s.name("a")
    body = {"id": name, "payloadBase64": b64(b"payload"), "tag": "t"}
    insert = s.tasks.insert(project=s.project, taskqueue=s.queue, body=body, fields="id,tag")
    s.call("insert", insert, s.ok({"id": name, "tag": "t"}))
    get = s.tasks.get(project=s.project, taskqueue=s.queue, task=name, fields="payloadBase64")
    s.call("get", get, s.ok({"payloadBase64": b64(b"payload")}))
    listed = s.tasks.list(project=s.project, taskqueue=s.queue, fields="items/id")
    s.call("list", listed, s.ok({"items": [{"id": name}]}))
    lease = s.tasks.lease(
        project=s.project, taskqueue=s.queue, numTasks=5, leaseSecs=60, fields="kind,items(id,retry_count)"
    )
    s.call("lease", lease, s.ok({"kind": "taskqueue#tasks", "items": [{"id": name, "retry_count": 1}]}))
    queue = s.queues.get(project=s.project, taskqueue=s.queue, getStats=True, fields="kind,stats/totalTasks")
    s.call("queue", queue, s.ok({"kind": "taskqueues#taskqueue", "stats": {"totalTasks": 1}}))
    bad = s.tasks.list(project=s.project, taskqueue=s.queue, fields="items(id")
    s.call("invalid-selector", bad, s.error(400, "invalid", "fields"))
