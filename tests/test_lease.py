"""Leases: order, tags, counts, expiry, maxLeases, and renewing or releasing a lease."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import PROJECT, QUEUE, b64, ids, insert, lease, listed, now_us
from tests.support.harness import Harness
from tests.support.http import BridgeServer, error_of


def test_lease_takes_the_oldest_eta_first_and_breaks_ties_by_name(api: Any, harness: Harness) -> None:
    soon = now_us() + 60_000_000
    insert(api, id="c-later", leaseTimestamp=str(soon + 2000))
    insert(api, id="b-tie", leaseTimestamp=str(soon + 1000), tag="x")
    insert(api, id="a-tie", leaseTimestamp=str(soon + 1000), tag="y")
    insert(api, id="d-first", leaseTimestamp=str(soon))
    harness.advance(120)
    assert ids(lease(api, num=10)) == ["d-first", "a-tie", "b-tie", "c-later"]


def test_lease_hands_out_payloads_new_eta_and_an_incremented_retry_count(api: Any) -> None:
    insert(api, id="t1", payloadBase64=b64(b"work"), tag="red")
    before = now_us()
    [task] = lease(api, num=1, secs=300)
    assert task["kind"] == "taskqueues#task"
    assert task["payloadBase64"] == b64(b"work")
    assert task["tag"] == "red"
    assert task["retry_count"] == 1
    assert task["queueName"] == f"projects/{PROJECT}/taskqueues/{QUEUE}"
    assert abs(int(task["leaseTimestamp"]) - (before + 300_000_000)) < 60_000_000


def test_a_leased_task_is_not_leased_again_until_its_lease_expires(api: Any, harness: Harness) -> None:
    insert(api, id="t1")
    assert [t["retry_count"] for t in lease(api, secs=60)] == [1]
    assert lease(api) == []
    harness.advance(59)
    assert lease(api) == []
    harness.advance(2)
    assert [t["retry_count"] for t in lease(api, secs=60)] == [2]


def test_num_tasks_caps_the_lease_and_an_empty_queue_gives_no_items(api: Any) -> None:
    for i in range(5):
        insert(api, id=f"t{i}")
    assert ids(lease(api, num=3)) == ["t0", "t1", "t2"]
    assert ids(lease(api, num=3)) == ["t3", "t4"]
    result = api.tasks().lease(project=PROJECT, taskqueue=QUEUE, numTasks=3, leaseSecs=60).execute()
    assert result == {"kind": "taskqueue#tasks"}


def test_a_lease_of_zero_seconds_hands_each_task_out_once_per_call(api: Any) -> None:
    for i in range(3):
        insert(api, id=f"t{i}")
    assert ids(lease(api, num=10, secs=0)) == ["t0", "t1", "t2"]
    assert sorted(ids(lease(api, num=10, secs=0))) == ["t0", "t1", "t2"]


def test_a_tag_without_group_by_tag_is_refused(api: Any) -> None:
    insert(api, id="t1", tag="x")
    error_of(api.tasks().lease(project=PROJECT, taskqueue=QUEUE, numTasks=1, leaseSecs=60, tag="x"), 400, "invalid")
    assert ids(lease(api)) == ["t1"]


def test_group_by_tag_with_a_tag_leases_only_that_tag(api: Any) -> None:
    insert(api, id="a1", tag="a")
    insert(api, id="b1", tag="b")
    insert(api, id="a2", tag="a")
    insert(api, id="u1")
    assert ids(lease(api, groupByTag=True, tag="a")) == ["a1", "a2"]
    assert ids(lease(api, groupByTag=True, tag="a")) == []
    assert ids(lease(api)) == ["b1", "u1"]


def test_group_by_tag_without_a_tag_leases_the_oldest_tasks_tag(api: Any) -> None:
    insert(api, id="b1", tag="b")
    insert(api, id="a1", tag="a")
    insert(api, id="b2", tag="b")
    insert(api, id="u1")
    leased = lease(api, groupByTag=True)
    assert ids(leased) == ["b1", "b2"]
    assert {task["tag"] for task in leased} == {"b"}
    assert ids(lease(api, groupByTag=True)) == ["a1"]


def test_untagged_tasks_form_their_own_group(api: Any) -> None:
    insert(api, id="u1")
    insert(api, id="t1", tag="t")
    insert(api, id="u2")
    leased = lease(api, groupByTag=True)
    assert ids(leased) == ["u1", "u2"]
    assert all("tag" not in task for task in leased)


def test_group_by_tag_with_an_empty_tag_leases_the_oldest_tasks_tag(api: Any, harness: Harness) -> None:
    # App Engine's stub: `if group_by_tag and tag:`, so "tag=" is no tag.
    insert(api, id="r1", tag="red")
    harness.advance(0.001)
    insert(api, id="u1")
    assert ids(lease(api, groupByTag=True, tag="")) == ["r1"]
    assert ids(lease(api, groupByTag=True, tag="")) == ["u1"]


def test_tags_are_utf8_and_leased_by_their_exact_value(api: Any) -> None:
    insert(api, id="t1", tag="größe")
    insert(api, id="t2", tag="grosse")
    assert ids(lease(api, groupByTag=True, tag="größe")) == ["t1"]


def test_a_task_leased_max_leases_times_is_dropped_and_tombstoned(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Path], harness: Harness
) -> None:
    path = queue_file("queue:\n- name: limited\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 2\n")
    api = make_bridge(queues=path).api()
    insert(api, queue="limited", id="t1")
    assert [t["retry_count"] for t in lease(api, queue="limited", secs=10)] == [1]
    harness.advance(11)
    assert [t["retry_count"] for t in lease(api, queue="limited", secs=10)] == [2]
    harness.advance(11)
    assert lease(api, queue="limited") == []
    error_of(api.tasks().get(project=PROJECT, taskqueue="limited", task="t1"), 404, "notFound")
    error_of(api.tasks().insert(project=PROJECT, taskqueue="limited", body={"id": "t1"}), 409, "duplicate")


def _renew(api: Any, task: str, seconds: int, body: dict[str, Any] | None = None, method: str = "update") -> Any:
    verb = getattr(api.tasks(), method)
    return verb(project=PROJECT, taskqueue=QUEUE, task=task, newLeaseSeconds=seconds, body=body or {})


@pytest.mark.parametrize("method", ["update", "patch"])
def test_the_lease_holder_renews_with_its_lease_timestamp(api: Any, harness: Harness, method: str) -> None:
    insert(api, id="t1", payloadBase64=b64(b"work"))
    [task] = lease(api, secs=60)
    harness.advance(30)
    before = now_us()
    renewed = _renew(api, "t1", 600, {"leaseTimestamp": task["leaseTimestamp"]}, method).execute()
    assert renewed["id"] == "t1" and renewed["retry_count"] == 1
    assert renewed["payloadBase64"] == b64(b"work")
    # The clock was moved on by 30 s, so now + 600 s is 630 s after the test's clock.
    assert abs(int(renewed["leaseTimestamp"]) - (before + 630_000_000)) < 60_000_000
    harness.advance(300)
    assert lease(api) == []


def test_renewing_without_a_token_works_while_the_lease_is_live(api: Any) -> None:
    insert(api, id="t1")
    lease(api, secs=60)
    assert _renew(api, "t1", 120).execute()["retry_count"] == 1


def test_renewing_with_a_stale_token_is_a_conflict_and_changes_nothing(api: Any) -> None:
    insert(api, id="t1")
    [task] = lease(api, secs=60)
    stale = str(int(task["leaseTimestamp"]) - 1)
    envelope = error_of(_renew(api, "t1", 600, {"leaseTimestamp": stale}), 409, "conflict")
    assert envelope["error"]["message"] == "lease expired or held by another worker"
    current = api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    assert current["leaseTimestamp"] == task["leaseTimestamp"]


def test_renewing_an_expired_lease_is_a_conflict(api: Any, harness: Harness) -> None:
    insert(api, id="t1")
    [task] = lease(api, secs=60)
    harness.advance(61)
    error_of(_renew(api, "t1", 60, {"leaseTimestamp": task["leaseTimestamp"]}), 409, "conflict")
    error_of(_renew(api, "t1", 60), 409, "conflict")


def test_a_task_never_leased_cannot_be_renewed(api: Any) -> None:
    insert(api, id="t1")
    error_of(_renew(api, "t1", 60), 409, "conflict")


def test_after_another_worker_takes_an_expired_task_the_first_token_is_refused(api: Any, harness: Harness) -> None:
    insert(api, id="t1")
    [first] = lease(api, secs=60)
    harness.advance(61)
    [second] = lease(api, secs=60)
    error_of(_renew(api, "t1", 60, {"leaseTimestamp": first["leaseTimestamp"]}), 409, "conflict")
    assert _renew(api, "t1", 60, {"leaseTimestamp": second["leaseTimestamp"]}).execute()["retry_count"] == 2


def test_zero_new_lease_seconds_releases_the_task_at_once(api: Any) -> None:
    insert(api, id="t1")
    [task] = lease(api, secs=600)
    released = _renew(api, "t1", 0, {"leaseTimestamp": task["leaseTimestamp"]}).execute()
    assert released["retry_count"] == 1
    assert [t["retry_count"] for t in lease(api)] == [2]


def test_renewing_an_unknown_or_deleted_task_is_404(api: Any) -> None:
    error_of(_renew(api, "nope", 60), 404, "notFound")
    insert(api, id="t1")
    lease(api)
    api.tasks().delete(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    error_of(_renew(api, "t1", 60), 404, "notFound")


@pytest.mark.parametrize("field, value", [("id", "other"), ("queueName", "other-queue")])
def test_a_renewal_body_naming_another_task_or_queue_is_refused(api: Any, field: str, value: str) -> None:
    insert(api, id="t1")
    [task] = lease(api, secs=60)
    error_of(_renew(api, "t1", 600, {field: value, "leaseTimestamp": task["leaseTimestamp"]}), 400, "invalid")
    current = api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    assert current["leaseTimestamp"] == task["leaseTimestamp"]


def test_null_names_in_a_renewal_body_count_as_absent(api: Any) -> None:
    # Clients that serialise a whole Task send its unset fields as null; insert already takes them so.
    insert(api, id="t1")
    [task] = lease(api, secs=60)
    renewed = _renew(api, "t1", 600, {"id": None, "queueName": None, "leaseTimestamp": task["leaseTimestamp"]})
    assert renewed.execute()["id"] == "t1"


def test_update_and_patch_accept_a_request_without_a_body(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1")
    lease(api, secs=60)
    path = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}/tasks/t1?newLeaseSeconds=30"
    for method in ("POST", "PATCH"):
        reply = bridge.request(method, path)
        assert reply.status == 200, reply.body
        assert reply.json["id"] == "t1"


def test_a_task_named_lease_is_renewed_with_patch(api: Any) -> None:
    insert(api, id="lease")
    [task] = lease(api, secs=60)
    assert task["id"] == "lease"
    patched = _renew(api, "lease", 0, {"leaseTimestamp": task["leaseTimestamp"]}, "patch").execute()
    assert patched["id"] == "lease"
    assert api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="lease").execute()["retry_count"] == 1


def test_concurrent_leasers_never_receive_the_same_task(bridge: BridgeServer) -> None:
    setup = bridge.api()
    for i in range(200):
        insert(setup, id=f"t{i:03d}")
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        api = bridge.api()  # one client per thread: httplib2 is not thread-safe
        while batch := lease(api, num=7, secs=600):
            with lock:
                seen.update(ids(batch))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(seen.values()) == 1
    assert set(seen) == {f"t{i:03d}" for i in range(200)}


def test_a_lease_stops_at_the_response_budget_and_leaves_the_rest_available(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    bridge = make_bridge(max_response_bytes=20_000)
    api = bridge.api()
    for i in range(6):
        insert(api, id=f"t{i}", payloadBase64=b64(bytes(6000)))  # 8,000 bytes of base64 each
    path = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}/tasks/lease?numTasks=10&leaseSecs=600"
    reply = bridge.request("POST", path)
    assert reply.status == 200 and len(reply.body) <= 20_000
    assert ids(reply.json["items"]) == ["t0", "t1"]
    second = lease(api, num=10, secs=600)
    assert ids(second) == ["t2", "t3"], "tasks that did not fit were not leased"
    assert [task["retry_count"] for task in second] == [1, 1]


def test_a_task_larger_than_the_response_budget_is_still_leased_alone(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    api = make_bridge(max_response_bytes=1000).api()
    insert(api, id="big", payloadBase64=b64(bytes(3000)))
    insert(api, id="small")
    assert ids(lease(api, num=10)) == ["big"]
    assert ids(lease(api, num=10)) == ["small"]


def test_a_list_stops_at_the_response_budget_but_always_shows_a_task(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    api = make_bridge(max_response_bytes=1000).api()
    for i in range(5):
        insert(api, id=f"t{i}", tag="x" * 100)
    assert ids(listed(api)) == ["t0"]


def test_tasks_dropped_after_max_leases_do_not_end_a_lease_early(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Path]
) -> None:
    path = queue_file("queue:\n- name: limited\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 1\n")
    api = make_bridge(queues=path).api()
    for i in range(3):
        insert(api, queue="limited", id=f"old{i}")
    assert ids(lease(api, queue="limited", num=3, secs=0)) == ["old0", "old1", "old2"]
    insert(api, queue="limited", id="fresh", tag="x")
    assert ids(lease(api, queue="limited", num=1)) == ["fresh"]


def test_with_strict_leases_a_stale_worker_without_the_token_cannot_release_the_new_holder(
    make_bridge: Callable[..., BridgeServer], harness: Harness
) -> None:
    bridge = make_bridge(strict_leases=True)
    api = bridge.api()
    insert(api, id="t1")
    lease(api, secs=60)  # worker A
    harness.advance(61)
    [second] = lease(api, secs=60)  # worker B
    path = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}/tasks/t1?newLeaseSeconds=0"
    reply = bridge.request("PATCH", path)  # A, body-less
    assert reply.status == 400, reply.body
    assert reply.json["error"]["errors"][0]["location"] == "leaseTimestamp"
    assert lease(api) == [], "B still holds its lease"
    assert _renew(api, "t1", 0, {"leaseTimestamp": second["leaseTimestamp"]}, "patch").execute()["id"] == "t1"


def test_strict_leases_per_queue_in_queue_yaml_override_the_setting(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Path]
) -> None:
    path = queue_file(
        "queue:\n- name: strict\n  mode: pull\n  strict_leases: true\n"
        "- name: loose\n  mode: pull\n- name: relaxed\n  mode: pull\n  strict_leases: false\n"
    )
    api = make_bridge(queues=path).api()
    for queue in ("strict", "loose", "relaxed"):
        insert(api, queue=queue, id="t1")
        lease(api, queue=queue, secs=60)
    renew = api.tasks().update
    error_of(renew(project=PROJECT, taskqueue="strict", task="t1", newLeaseSeconds=30, body={}), 400, "required")
    assert renew(project=PROJECT, taskqueue="loose", task="t1", newLeaseSeconds=30, body={}).execute()["id"] == "t1"
    strict_everywhere = make_bridge(queues=path, strict_leases=True).api()
    error_of(
        strict_everywhere.tasks().update(project=PROJECT, taskqueue="loose", task="t1", newLeaseSeconds=30, body={}),
        400,
        "required",
    )
    relaxed = strict_everywhere.tasks().update(project=PROJECT, taskqueue="relaxed", task="t1", newLeaseSeconds=9)
    assert relaxed.execute()["id"] == "t1"
