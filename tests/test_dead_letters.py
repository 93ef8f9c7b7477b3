"""Dead letters through the v1 API: the counter in /metrics, and what get says of a dropped task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.api import PROJECT, ids, insert, lease
from tests.support.harness import Harness
from tests.support.http import BridgeServer, error_of
from tests.test_observability import scrape, value


def test_the_v1_api_counts_a_dropped_task_and_its_get_says_why(
    make_bridge: Callable[..., BridgeServer], queue_file: Callable[[str], Path], harness: Harness
) -> None:
    path = queue_file("queue:\n- name: limited\n  mode: pull\n  retry_parameters:\n    task_retry_limit: 1\n")
    server = make_bridge(queues=path)
    api = server.api()
    insert(api, queue="limited", id="t1")
    assert ids(lease(api, queue="limited", secs=1)) == ["t1"]
    harness.advance(2)
    before = scrape(server)
    assert lease(api, queue="limited") == []
    assert (
        value(scrape(server), "bridge_tasks_dead_lettered_total")
        == value(before, "bridge_tasks_dead_lettered_total") + 1
    )
    envelope = error_of(api.tasks().get(project=PROJECT, taskqueue="limited", task="t1"), 404, "notFound")
    assert envelope["error"]["message"] == "Task t1 was dropped after 1 leases (maxLeases)"
