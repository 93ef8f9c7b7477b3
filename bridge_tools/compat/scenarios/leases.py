"""Scenarios of leases: order and counts, tags, expiry, renewal with and without the
ownership token, release."""

from __future__ import annotations

from typing import Any

from backends.limits import US
from bridge_tools.compat.scenarios.base import now_us, scenario, with_uri
from bridge_tools.compat.session import Session

#: A lease this short expires during the battery; the wait is a little longer than it.
SHORT_LEASE = 1
EXPIRY_WAIT = 1.2


@scenario("lease-order")
def lease_order(s: Session) -> None:
    """Lease hands out available tasks oldest ETA first, at most numTasks, each once."""
    c, a, b = (s.insert(key) for key in "cab")
    later = s.insert("later", eta_us=now_us() + 3600 * US)
    s.lease("lease-2", [c, a], num=2)
    s.lease("lease-rest", [b], num=10)
    s.lease("lease-none", [], num=10)
    # c and a share the ETA of one lease: ties go by name.
    s.list_tasks("list", [a, c, b, later])


@scenario("lease-across-tags")
def lease_across_tags(s: Session) -> None:
    """Without groupByTag a lease takes tagged and untagged tasks alike, by ETA."""
    x, y, z = s.insert("x", tag="red"), s.insert("y"), s.insert("z", tag="blue")
    s.lease("lease", [x, y, z])
    s.get("get-y", y)


@scenario("lease-limits")
def lease_limits(s: Session) -> None:
    """numTasks 1-1000 and leaseSecs 0-604800; a tag needs groupByTag; both are required."""
    a = s.insert("a")
    bad: dict[str, dict[str, Any]] = {
        "num-0": dict(numTasks=0, leaseSecs=60),
        "num-1001": dict(numTasks=1001, leaseSecs=60),
        "secs-negative": dict(numTasks=1, leaseSecs=-1),
        "secs-over-a-week": dict(numTasks=1, leaseSecs=604801),
        "tag-without-group": dict(numTasks=1, leaseSecs=60, tag="red"),
    }
    for label, params in bad.items():
        location = "tag" if "tag" in params else ("numTasks" if label.startswith("num") else "leaseSecs")
        request = s.tasks.lease(project=s.project, taskqueue=s.queue, **params)
        s.call(label, request, s.error(400, "invalid", location))
    request = s.tasks.lease(project=s.project, taskqueue=s.queue, numTasks=1, leaseSecs=60)
    s.call("no-lease-secs", with_uri(request, drop="leaseSecs"), s.error(400, "required", "leaseSecs"))
    request = s.tasks.lease(project=s.project, taskqueue=s.queue, numTasks=1, leaseSecs=60)
    s.call("no-num-tasks", with_uri(request, drop="numTasks"), s.error(400, "required", "numTasks"))
    s.list_tasks("list-untouched", [a])
    s.lease("lease-0s", [a], secs=0)
    s.lease("lease-largest", [a], num=1000, secs=604800)


@scenario("lease-concurrent")
def lease_concurrent(s: Session) -> None:
    """Leases sent at the same moment never hand out one task twice."""
    for i in range(12):
        s.insert(f"t{i:02d}")
    requests = [s.tasks.lease(project=s.project, taskqueue=s.queue, numTasks=5, leaseSecs=60) for _ in range(4)]
    expect = {"statuses": [200] * 4, "leased": 12, "distinct": 12, "retry_counts": [1]}
    s.call_together("four-leases-at-once", requests, _lease_summary, expect)
    s.lease("lease-none", [])


def _lease_summary(answers: list[tuple[int, Any]]) -> dict[str, Any]:
    items = [item for _, body in answers if isinstance(body, dict) for item in body.get("items", [])]
    return {
        "statuses": sorted(status for status, _ in answers),
        "leased": len(items),
        "distinct": len({item.get("id") for item in items}),
        "retry_counts": sorted({item.get("retry_count") for item in items}),
    }


@scenario("lease-tags")
def lease_tags(s: Session) -> None:
    """groupByTag with a tag leases that tag; without one, the oldest task's tag (or the untagged)."""
    r1, b1, r2, u1 = s.insert("r1", tag="rød"), s.insert("b1", tag="blue"), s.insert("r2", tag="rød"), s.insert("u1")
    s.lease("lease-rod", [r1, r2], groupByTag=True, tag="rød")
    s.lease("lease-oldest-blue", [b1], groupByTag=True)
    s.lease("lease-oldest-untagged", [u1], groupByTag=True)
    s.lease("lease-none", [], groupByTag=True)


@scenario("lease-oldest-group")
def lease_oldest_group(s: Session) -> None:
    """Oldest-tag grouping takes the whole group of the oldest task, untagged ones included."""
    u1, r1, u2 = s.insert("u1"), s.insert("r1", tag="red"), s.insert("u2")
    s.lease("lease-untagged", [u1, u2], groupByTag=True)
    s.lease("lease-red", [r1], groupByTag=True, num=1)


@scenario("lease-expiry")
def lease_expiry(s: Session) -> None:
    """A task whose lease expired is leased again, with retry_count 2."""
    # Whether a held task stays back is shown with 60-second leases (lease-order): with a
    # 1-second one, a stalled machine could let it expire before the next call.
    a = s.insert("a")
    s.lease("lease-short", [a], secs=SHORT_LEASE)
    s.wait(EXPIRY_WAIT)
    s.lease("lease-after-expiry", [a])


@scenario("renew")
def renew(s: Session) -> None:
    """Update and patch renew a held lease; the token must be the current leaseTimestamp."""
    a = s.insert("a")
    s.lease("lease", [a])
    stale = s.token_of(a)
    s.renew("update-with-token", a, 120, body=s.token_of(a))
    request = s.tasks.update(project=s.project, taskqueue=s.queue, task=s.name("a"), newLeaseSeconds=30, body=stale)
    s.call("update-with-stale-token", request, s.error(409, "conflict", "task"))
    s.renew("patch-without-token", a, 90, method="patch")
    s.renew("patch-with-token", a, 45, method="patch", body=s.token_of(a))
    # A client that serialises a whole Task object sends its unset fields as null.
    s.renew("update-with-nulls", a, 50, body={**s.token_of(a), "id": None, "queueName": None, "tag": None})
    request = s.tasks.patch(
        project=s.project, taskqueue=s.queue, task=s.name("a"), newLeaseSeconds=30, body={"id": s.name("b")}
    )
    s.call("patch-naming-another-task", request, s.error(400, "invalid", "id"))
    request = s.tasks.update(project=s.project, taskqueue=s.queue, task=s.name("a"), newLeaseSeconds=604801)
    s.call("update-over-a-week", request, s.error(400, "invalid", "newLeaseSeconds"))
    request = s.tasks.update(project=s.project, taskqueue=s.queue, task=s.name("a"), newLeaseSeconds=30)
    request = with_uri(request, drop="newLeaseSeconds")
    s.call("update-without-seconds", request, s.error(400, "required", "newLeaseSeconds"))
    request = s.tasks.update(project=s.project, taskqueue=s.queue, task=s.name("nope"), newLeaseSeconds=30)
    s.call("update-unknown", request, s.error(404, "notFound", "task"))
    b = s.insert("b")
    request = s.tasks.update(project=s.project, taskqueue=s.queue, task=s.name("b"), newLeaseSeconds=30)
    s.call("update-not-leased", request, s.error(409, "conflict", "task"))
    s.list_tasks("list", [b, a])


@scenario("renew-expired")
def renew_expired(s: Session) -> None:
    """A lease that has expired cannot be renewed, with or without its token."""
    a = s.insert("a")
    s.lease("lease-short", [a], secs=SHORT_LEASE)
    token = s.token_of(a)
    s.wait(EXPIRY_WAIT)
    request = s.tasks.update(project=s.project, taskqueue=s.queue, task=s.name("a"), newLeaseSeconds=60, body=token)
    s.call("update-with-token", request, s.error(409, "conflict", "task"))
    request = s.tasks.patch(project=s.project, taskqueue=s.queue, task=s.name("a"), newLeaseSeconds=60)
    s.call("patch-without-token", request, s.error(409, "conflict", "task"))
    s.lease("lease-again", [a])


@scenario("release")
def release(s: Session) -> None:
    """newLeaseSeconds=0 releases a lease: the task is leasable at once, retry_count kept."""
    a, b = s.insert("a"), s.insert("b")
    s.lease("lease", [a, b])
    s.renew("release-a", a, 0, body=s.token_of(a))
    s.lease("lease-released", [a])
    s.renew("release-b", b, 0, method="patch")
    s.get("get-b", b)
    s.lease("lease-b", [b], num=1)
