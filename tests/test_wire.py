"""The HTTP surface: Discovery, encodings, partial responses, method override."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from backends import limits
from bridge.taskqueue import routes
from tests.support.api import PROJECT, QUEUE, b64, insert, lease
from tests.support.harness import Variant
from tests.support.http import BridgeServer

BASE = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}"


@pytest.mark.parametrize("path", ["/discovery/v1/apis/taskqueue/v1beta2/rest", "/api/taskqueue/v1beta2"])
def test_discovery_is_served_with_the_callers_root_url_and_no_scopes(bridge: BridgeServer, path: str) -> None:
    reply = bridge.request("GET", path)
    assert reply.status == 200
    document = reply.json
    assert document["id"] == "taskqueue:v1beta2"
    assert document["rootUrl"] == bridge.url + "/"
    assert document["baseUrl"] == bridge.url + "/taskqueue/v1beta2/projects/"
    assert document["servicePath"] == "taskqueue/v1beta2/projects/"
    assert not document.get("auth", {}).get("oauth2", {}).get("scopes")
    methods = {m["id"] for r in document["resources"].values() for m in r["methods"].values()}
    assert len(methods) == 8


def test_discovery_sets_no_pattern_or_range_the_client_would_enforce(bridge: BridgeServer) -> None:
    text = bridge.request("GET", "/api/taskqueue/v1beta2").body.decode()
    for word in ('"pattern"', '"minimum"', '"maximum"'):
        assert word not in text


@pytest.mark.parametrize(
    ("rule", "valid"),
    [
        (limits.TASK_ID, "t-1_x"),
        (limits.QUEUE_NAME, "q-1"),
        (limits.PROJECT, "s~example.com:app"),
        (limits.INT64, "-12"),
    ],
)
def test_every_name_rule_matches_the_whole_value(rule: limits.Name, valid: str) -> None:
    assert rule.matches(valid)
    for invalid in (valid + "\n", "\n" + valid, valid + " ", "", None, 12):
        assert not rule.matches(invalid), invalid
    assert limits.app_id("s~example.com:app") == "example.com:app" and limits.app_id("app\n") is None


def test_discovery_answers_with_the_host_the_client_used(bridge: BridgeServer) -> None:
    reply = bridge.request("GET", "/api/taskqueue/v1beta2", headers={"Host": "tasks.internal:9000"})
    assert reply.json["rootUrl"] == "http://tasks.internal:9000/"


def test_a_public_url_setting_overrides_the_root_url(make_bridge: Callable[..., BridgeServer]) -> None:
    server = make_bridge(public_url="https://queue.example.com/")
    assert server.request("GET", "/api/taskqueue/v1beta2").json["rootUrl"] == "https://queue.example.com/"


def test_discovery_of_another_api_is_a_404_envelope(bridge: BridgeServer) -> None:
    reply = bridge.request("GET", "/discovery/v1/apis/storage/v1/rest")
    assert reply.status == 404
    assert reply.json["error"]["errors"][0]["reason"] == "notFound"


def test_int64_fields_are_json_strings_and_int32_fields_numbers(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1")
    task = bridge.request("GET", f"{BASE}/tasks/t1").json
    for name in ("enqueueTimestamp", "leaseTimestamp"):
        assert isinstance(task[name], str) and task[name].isdigit()
    assert isinstance(task["retry_count"], int)
    # Microseconds: 16 digits until the year 2286.
    assert len(task["enqueueTimestamp"]) == 16


def test_int64_request_fields_may_be_strings_or_numbers(api: Any) -> None:
    insert(api, id="t1")
    [task] = lease(api, secs=60)
    token = int(task["leaseTimestamp"])
    renewed = api.tasks().update(
        project=PROJECT, taskqueue=QUEUE, task="t1", newLeaseSeconds=60, body={"leaseTimestamp": token}
    )
    assert renewed.execute()["id"] == "t1"


def test_fields_selects_a_partial_response(api: Any) -> None:
    insert(api, id="t1", payloadBase64=b64(b"x"), tag="a")
    result = (
        api.tasks()
        .lease(project=PROJECT, taskqueue=QUEUE, numTasks=1, leaseSecs=60, fields="items(id,payloadBase64),kind")
        .execute()
    )
    assert result == {"kind": "taskqueue#tasks", "items": [{"id": "t1", "payloadBase64": b64(b"x")}]}
    task = api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="t1", fields="id,tag").execute()
    assert task == {"id": "t1", "tag": "a"}


def test_fields_accepts_paths_and_wildcards(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1")
    assert bridge.request("GET", f"{BASE}/tasks?fields=items/id").json == {"items": [{"id": "t1"}]}
    assert bridge.request("GET", f"{BASE}/tasks?fields=items(*)").json["items"][0]["id"] == "t1"
    stats = bridge.request("GET", f"{BASE}?getStats=true&fields=stats/totalTasks").json
    assert stats == {"stats": {"totalTasks": 1}}


@pytest.mark.parametrize("selector", ["items(", "items)", "a,,b", "items/", "it ems$"])
def test_a_malformed_fields_selector_is_refused(bridge: BridgeServer, selector: str) -> None:
    reply = bridge.request("GET", f"{BASE}/tasks?fields={selector.replace(' ', '%20')}")
    assert reply.status == 400
    assert reply.json["error"]["errors"][0]["location"] == "fields"


def test_method_override_tunnels_patch_and_delete_through_post(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1")
    lease(api, secs=60)
    patched = bridge.request("POST", f"{BASE}/tasks/t1?newLeaseSeconds=0", b"{}", {"X-HTTP-Method-Override": "PATCH"})
    assert patched.status == 200 and patched.json["id"] == "t1"
    deleted = bridge.request("POST", f"{BASE}/tasks/t1", headers={"X-HTTP-Method-Override": "DELETE"})
    assert deleted.status == 204


def test_method_override_get_reads_its_query_from_a_form_body(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1", tag="a")
    reply = bridge.request(
        "POST",
        f"{BASE}/tasks/t1",
        b"fields=id%2Ctag&prettyPrint=false",
        {"X-HTTP-Method-Override": "GET", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 200
    assert reply.body == b'{"id":"t1","tag":"a"}'


def test_lease_tolerates_a_form_encoded_empty_body(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1")
    reply = bridge.request(
        "POST",
        f"{BASE}/tasks/lease?numTasks=1&leaseSecs=60",
        b"",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 200
    assert reply.json["items"][0]["id"] == "t1"


def test_pretty_print_is_the_default_and_can_be_switched_off(bridge: BridgeServer, api: Any) -> None:
    insert(api, id="t1")
    pretty = bridge.request("GET", f"{BASE}/tasks/t1").body
    compact = bridge.request("GET", f"{BASE}/tasks/t1?prettyPrint=false").body
    assert b"\n" in pretty and b"\n" not in compact
    assert json.loads(pretty) == json.loads(compact)


def test_only_json_is_served_and_unknown_parameters_are_ignored(bridge: BridgeServer) -> None:
    assert bridge.request("GET", f"{BASE}/tasks?alt=proto").status == 400
    reply = bridge.request("GET", f"{BASE}/tasks?alt=json&key=k&quotaUser=u&userIp=1.2.3.4&trace=t&whatever=1")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"


def test_in_the_token_variant_every_api_call_needs_the_token(bridge: BridgeServer, variant: Variant) -> None:
    # The suite's clients send the token by themselves; without it the same call must fail,
    # or the token variant would prove nothing.
    insert(bridge.api(), id="t1")
    without = bridge.request("GET", f"{BASE}/tasks/t1", headers={"Authorization": ""})
    assert without.status == (401 if variant.auth == "token" else 200)
    assert bridge.request("GET", f"{BASE}/tasks/t1").status == 200
    assert bridge.request("GET", "/api/taskqueue/v1beta2", headers={"Authorization": ""}).status == 200


@pytest.mark.parametrize("pretty", [True, False])
@pytest.mark.parametrize("whole_bytes", [0, routes.WHOLE_BYTES])
def test_a_response_encoded_in_parts_is_the_same_json_as_one_encoded_whole(
    monkeypatch: pytest.MonkeyPatch, pretty: bool, whole_bytes: int
) -> None:
    monkeypatch.setattr(routes, "WHOLE_BYTES", whole_bytes)
    monkeypatch.setattr(routes, "PART_BYTES", 1000)  # several parts
    items = [{"kind": "taskqueues#task", "id": f"t{n}", "payloadBase64": "QUJD" * 100, "tag": "é\n"} for n in range(9)]
    resource = {"kind": "taskqueue#tasks", "items": items}
    whole = orjson.dumps(resource, option=orjson.OPT_INDENT_2 if pretty else 0)
    parts = routes._encoded({"kind": "taskqueue#tasks", "items": [dict(item) for item in items]}, pretty)
    assert b"".join(parts) == whole
    assert len(parts) == (1 if whole_bytes else 4)


@pytest.mark.parametrize("with_payload", [9, 5, 0])
def test_the_payload_characters_that_decide_one_piece_or_parts_count_items_without_one(with_payload: int) -> None:
    # A lease's items all have a payload (summed in C); a list's or a `fields`
    # selection's may have none (summed item by item): both must give the same count.
    items = [{"id": f"t{n}", **({"payloadBase64": "QUJD" * (n + 1)} if n < with_payload else {})} for n in range(9)]
    assert routes._payload_chars(items) == sum(4 * (n + 1) for n in range(with_payload))
