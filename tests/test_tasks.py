"""Insert, get, list and delete, with names, tombstones and payload encoding."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import PROJECT, QUEUE, b64, ids, insert, lease, listed, now_us
from tests.support.harness import Harness
from tests.support.http import BridgeServer, error_of

MIB = 1024 * 1024


def test_insert_returns_the_stored_task_with_server_owned_fields(api: Any) -> None:
    before = now_us()
    task = insert(api, id="t1", payloadBase64=b64(b"hello"), tag="red", retry_count=7, enqueueTimestamp="5")
    assert task["kind"] == "taskqueues#task"
    assert task["id"] == "t1"
    assert task["queueName"] == f"projects/{PROJECT}/taskqueues/{QUEUE}"
    assert task["payloadBase64"] == b64(b"hello")
    assert task["tag"] == "red"
    assert task["retry_count"] == 0
    assert abs(int(task["enqueueTimestamp"]) - before) < 60_000_000
    assert abs(int(task["leaseTimestamp"]) - before) < 60_000_000


@pytest.mark.parametrize("eta", [None, "0"], ids=["absent", "zero"])
def test_a_task_available_at_once_has_its_enqueue_time_as_its_lease_timestamp(api: Any, eta: str | None) -> None:
    task = insert(api, id="t1", **({} if eta is None else {"leaseTimestamp": eta}))
    assert task["leaseTimestamp"] == task["enqueueTimestamp"]


def test_insert_without_a_name_generates_random_distinct_names(api: Any) -> None:
    names = [insert(api)["id"] for _ in range(5)]
    assert len(set(names)) == 5
    for name in names:
        assert len(name) >= 22 and not name.isdigit()
    assert sorted(names) == sorted(ids(listed(api)))


def test_get_returns_the_payload_and_list_does_not(api: Any) -> None:
    insert(api, id="t1", payloadBase64=b64(b"\xfb\xff\xfe body"), tag="x")
    task = api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    assert task["payloadBase64"] == b64(b"\xfb\xff\xfe body")
    assert "-" in task["payloadBase64"] and "_" in task["payloadBase64"]
    [entry] = listed(api)
    assert "payloadBase64" not in entry
    assert entry["id"] == "t1" and entry["tag"] == "x" and entry["retry_count"] == 0


def test_list_returns_at_most_100_tasks_in_eta_order(api: Any) -> None:
    base = now_us() + 3_600_000_000
    for i in range(105):
        # Later names get earlier ETAs, so that ETA order is not insertion order.
        insert(api, id=f"t{i:03d}", leaseTimestamp=str(base - i * 1000))
    entries = listed(api)
    assert len(entries) == 100
    assert ids(entries) == [f"t{i:03d}" for i in range(104, 4, -1)]


def test_list_of_an_empty_queue_has_no_items(api: Any) -> None:
    result = api.tasks().list(project=PROJECT, taskqueue="empty").execute()
    assert result == {"kind": "taskqueues#tasks"}


def test_a_future_eta_keeps_the_task_back_until_it_passes(api: Any, harness: Harness) -> None:
    eta = now_us() + 3_600_000_000
    task = insert(api, id="later", leaseTimestamp=str(eta))
    assert abs(int(task["leaseTimestamp"]) - eta) < 60_000_000
    assert lease(api) == []
    harness.advance(3700)
    assert ids(lease(api)) == ["later"]


def test_a_zero_eta_means_now_and_a_past_one_is_kept_so_it_is_leased_first(api: Any) -> None:
    before = now_us()
    early = insert(api, id="early")
    zero = insert(api, id="zero", leaseTimestamp="0")
    for task in (early, zero):
        assert abs(int(task["leaseTimestamp"]) - before) < 60_000_000
    # App Engine's taskqueue_stub.py keeps a past ETA as given, so it sorts first.
    past_due = str(int(early["leaseTimestamp"]) - 30_000_000)
    assert insert(api, id="pastdue", leaseTimestamp=past_due)["leaseTimestamp"] == past_due
    assert ids(lease(api, num=1)) == ["pastdue"]


def test_a_negative_lease_timestamp_is_refused(api: Any) -> None:
    body = {"id": "t1", "leaseTimestamp": "-5"}
    envelope = error_of(api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body=body), 400, "invalid")
    assert envelope["error"]["errors"][0]["location"] == "leaseTimestamp"
    assert listed(api) == []


def test_an_eta_more_than_30_days_ahead_is_refused(api: Any) -> None:
    too_far = now_us() + 31 * 24 * 3600 * 1_000_000
    envelope = error_of(
        api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"leaseTimestamp": str(too_far)}), 400, "invalid"
    )
    assert "leaseTimestamp" in envelope["error"]["message"]
    assert listed(api) == []


def test_a_live_name_cannot_be_inserted_twice(api: Any) -> None:
    insert(api, id="t1", payloadBase64=b64(b"first"))
    error_of(
        api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"id": "t1", "payloadBase64": b64(b"second")}),
        409,
        "duplicate",
    )
    task = api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    assert task["payloadBase64"] == b64(b"first")


def test_a_deleted_name_is_reserved_until_its_tombstone_expires(open_harness: Any) -> None:
    from bridge import create_app
    from bridge.settings import Settings
    from tests.support.http import serving

    harness = open_harness(tombstone_seconds=120)
    with serving(create_app(Settings(backend=harness.url), backend=harness.backend)) as server:
        api = server.api()
        insert(api, id="t1")
        api.tasks().delete(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
        error_of(api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"id": "t1"}), 409, "duplicate")
        harness.advance(60)
        error_of(api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"id": "t1"}), 409, "duplicate")
        harness.advance(61)
        assert insert(api, id="t1")["id"] == "t1"


def test_delete_answers_204_with_an_empty_body_and_works_on_a_leased_task(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1")
    assert ids(lease(api)) == ["t1"]
    reply = bridge.request("DELETE", f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}/tasks/t1")
    assert (reply.status, reply.body) == (204, b"")
    assert listed(api) == []
    error_of(api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1"), 404, "notFound")


def test_delete_of_an_unknown_or_deleted_task_is_404_and_says_which(api: Any) -> None:
    unknown = error_of(api.tasks().delete(project=PROJECT, taskqueue=QUEUE, task="nope"), 404, "notFound")
    assert "nope" in unknown["error"]["message"]
    insert(api, id="t1")
    api.tasks().delete(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    again = error_of(api.tasks().delete(project=PROJECT, taskqueue=QUEUE, task="t1"), 404, "notFound")
    assert "deleted" in again["error"]["message"]


def test_get_of_a_deleted_task_is_404_and_says_it_was_deleted(api: Any) -> None:
    insert(api, id="t1")
    api.tasks().delete(project=PROJECT, taskqueue=QUEUE, task="t1").execute()
    envelope = error_of(api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1"), 404, "notFound")
    assert "deleted" in envelope["error"]["message"]


def test_payloads_without_padding_are_accepted_and_returned_padded(api: Any) -> None:
    task = insert(api, id="t1", payloadBase64="aGk")
    assert task["payloadBase64"] == "aGk="


@pytest.mark.parametrize("payload", ["a+b/", "aGk=x", "a", "!!!!"])
def test_payloads_that_are_not_url_safe_base64_are_refused(api: Any, payload: str) -> None:
    envelope = error_of(
        api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"payloadBase64": payload}), 400, "invalid"
    )
    assert envelope["error"]["errors"][0]["location"] == "payloadBase64"
    assert listed(api) == []


def test_a_payload_of_exactly_1_mib_is_accepted_and_one_byte_more_is_not(api: Any) -> None:
    big = bytes(range(256)) * (MIB // 256)
    insert(api, id="big", payloadBase64=b64(big))
    assert api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="big").execute()["payloadBase64"] == b64(big)
    error_of(
        api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"payloadBase64": b64(big + b"x")}), 400, "invalid"
    )
    assert ids(listed(api)) == ["big"]


def test_tags_are_limited_to_500_bytes_of_utf8(api: Any) -> None:
    tag = "é" * 250  # 500 bytes
    assert insert(api, id="ok", tag=tag)["tag"] == tag
    error_of(api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"tag": tag + "x"}), 400, "invalid")
    assert ids(listed(api)) == ["ok"]


@pytest.mark.parametrize("name", ["x" * 501, "has space", "dot.ted", "ünï"])
def test_task_names_outside_the_pattern_are_refused(api: Any, name: str) -> None:
    envelope = error_of(api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"id": name}), 400, "invalid")
    assert envelope["error"]["errors"][0]["location"] == "id"
    assert listed(api) == []


def test_a_500_character_name_is_accepted(api: Any) -> None:
    name = "a_-" * 166 + "zz"
    assert insert(api, id=name)["id"] == name
    assert api.tasks().get(project=PROJECT, taskqueue=QUEUE, task=name).execute()["id"] == name


@pytest.mark.parametrize(
    "queue_name", [QUEUE, f"projects/{PROJECT}/taskqueues/{QUEUE}", f"projects/demo-app/taskqueues/{QUEUE}"]
)
def test_a_body_may_name_its_queue_in_short_or_long_form(api: Any, queue_name: str) -> None:
    assert insert(api, id="t1", queueName=queue_name)["id"] == "t1"


@pytest.mark.parametrize(
    "queue_name", ["other", "projects/other-app/taskqueues/work", "projects/demo-app/taskqueues/other"]
)
def test_a_body_naming_another_queue_is_refused(api: Any, queue_name: str) -> None:
    envelope = error_of(
        api.tasks().insert(project=PROJECT, taskqueue=QUEUE, body={"queueName": queue_name}), 400, "invalid"
    )
    assert envelope["error"]["errors"][0]["location"] == "queueName"
    assert listed(api) == []
