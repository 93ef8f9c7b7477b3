"""``python -m bridge smoke`` against the fake: what it prints, its exit status, and that it cleans up."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result
from google.api_core import exceptions as gexc

from bridge.cli import main
from tests.cloudtasks.conftest import LOCATION
from tests.support.cloudtasks_fake import FakeCloudTasks

pytestmark = pytest.mark.cloudtasks

URL = f"cloudtasks://{LOCATION}"
SMOKE_QUEUE = f"{LOCATION}/queues/bridge-smoke"


def _smoke(fake: FakeCloudTasks, *extra: str, url: str = URL) -> Result:
    return CliRunner().invoke(main, ["smoke", "--backend", url, "--cloudtasks-endpoint", fake.address, *extra])


def _lines(result: Result) -> dict[str, str]:
    """Check name -> outcome and detail, from the lines of the report."""
    found = {}
    for line in result.output.splitlines():
        if line.startswith("  ") and line.split()[0] in ("ok", "FAIL", "skip"):
            outcome, rest = line.strip().split(None, 1)
            name, _, detail = rest.partition("  ")
            found[name.strip()] = f"{outcome} {detail.strip()}"
    return found


def test_on_a_working_project_every_check_passes_and_nothing_is_left_behind(fake: FakeCloudTasks) -> None:
    fake.add_queue(LOCATION, "bridge-smoke")
    result = _smoke(fake)
    assert result.exit_code == 0, result.output
    lines = _lines(result)
    assert list(lines) == [
        "queue",
        "create task",
        "create it again",
        "lease (FULL view, by tag)",
        "renew with a stale token",
        "renew",
        "cancel lease",
        "delete",
        "get after delete",
        "1 MiB payload",
        "queue stats",
    ]
    assert all(line.startswith("ok") for line in lines.values())
    assert "ALREADY_EXISTS (6)" in lines["create it again"]
    assert "FAILED_PRECONDITION (9)" in lines["renew with a stale token"]
    assert "NOT_FOUND (5)" in lines["get after delete"] and "existed recently" in lines["get after delete"]
    assert "11 of 11 checks passed" in result.output
    assert fake.queues[SMOKE_QUEUE].tasks == {}


def test_a_refused_call_prints_its_exact_status_fails_the_run_and_still_cleans_up(fake: FakeCloudTasks) -> None:
    fake.add_queue(LOCATION, "bridge-smoke")
    fake.fail(gexc.PermissionDenied, methods=["LeaseTasks"])
    fake.fail(gexc.InvalidArgument, methods=["DeleteTask"])
    result = _smoke(fake)
    assert result.exit_code == 1
    lines = _lines(result)
    assert lines["lease (FULL view, by tag)"].startswith("FAIL PERMISSION_DENIED (7)")
    assert lines["renew"] == "skip needs the lease"
    assert lines["delete"].startswith("FAIL INVALID_ARGUMENT (3)")
    assert "cleaned up" in result.output
    assert fake.queues[SMOKE_QUEUE].tasks == {}


def test_a_missing_queue_stops_the_check_with_the_services_answer(fake: FakeCloudTasks) -> None:
    result = _smoke(fake, "--queue", "nope")
    assert result.exit_code == 1
    assert _lines(result)["queue"].startswith("FAIL NOT_FOUND (5)")
    assert "create task" not in _lines(result)


def test_with_create_queues_the_check_creates_its_queue(fake: FakeCloudTasks) -> None:
    result = _smoke(fake, url=URL + "?create_queues=true")
    assert result.exit_code == 0, result.output
    assert fake.queues[SMOKE_QUEUE].pull


def test_a_push_queue_is_reported_as_not_a_pull_queue(fake: FakeCloudTasks) -> None:
    fake.add_queue(LOCATION, "bridge-smoke", pull=False)
    result = _smoke(fake)
    assert result.exit_code == 1 and "not a pull queue" in result.output


def test_smoke_checks_only_cloud_tasks_backends() -> None:
    result = CliRunner().invoke(main, ["smoke", "--backend", "memory://"])
    assert result.exit_code == 1 and "cloudtasks://" in result.output
