"""``python -m bridge smoke``: does a real project serve v2beta2 pull queues as the bridge needs?

Google steers pull-queue users to Pub/Sub, and some projects have found v2beta2 pull
calls refused, so an operator runs this before relying on the proxy. It makes the calls
the bridge makes, on one task of its own (a random name and tag, so that it never leases
anyone else's task), prints each outcome with the exact gRPC status the service
returned, and deletes what it created, whatever happened. Exit status 0 means every
check behaved as the bridge expects.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import click
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2beta2 as ct
from google.protobuf import duration_pb2, field_mask_pb2

from backends import open_backend
from backends.cloudtasks.backend import CloudTasksBackend, timestamp_of, us_of
from backends.limits import MAX_PAYLOAD_BYTES
from bridge.cli import backend_setting_options, settings_from

DEFAULT_QUEUE = "bridge-smoke"
#: The largest payload v1 accepts; Cloud Tasks documents "1MB" for pull tasks.
BIG_PAYLOAD = MAX_PAYLOAD_BYTES
LEASE_SECONDS = 60


def status_of(exc: gexc.GoogleAPICallError) -> str:
    """The gRPC status of an error as the service sent it, e.g. ``FAILED_PRECONDITION (9)``."""
    code = exc.grpc_status_code
    name = f"{code.name} ({code.value[0]})" if code is not None else type(exc).__name__
    return f"{name}: {exc.message}"


class _Skipped(Exception):
    pass


@dataclass
class Smoke:
    """One run of the check; `run` prints as it goes and returns whether all passed."""

    backend: CloudTasksBackend
    queue_id: str
    echo: Callable[[str], None]
    results: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    @property
    def queue(self) -> str:
        return f"{self.backend.where.name}/queues/{self.queue_id}"

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request=request, retry=None, timeout=self.backend.timeout)

    def step(self, name: str, check: Callable[[], str], *, expect: type[gexc.GoogleAPICallError] | None = None) -> bool:
        """Run one check. With ``expect``, the check passes when the call fails with that error."""
        try:
            detail = check()
        except _Skipped as skipped:
            outcome, detail = "skip", str(skipped)
        except gexc.GoogleAPICallError as exc:
            outcome = "ok" if expect is not None and isinstance(exc, expect) else "FAIL"
            detail = status_of(exc) + (" (as expected)" if outcome == "ok" else "")
        else:
            outcome = "FAIL" if expect is not None else "ok"
            if expect is not None:
                detail = f"succeeded, but {expect.__name__} was expected: {detail}"
        self.results.append(outcome)
        self.echo(f"  {outcome:<5} {name:<26} {detail}")
        return outcome == "ok"

    def run(self) -> bool:
        self.echo(f"Cloud Tasks v2beta2 pull-queue check on {self.queue}")
        token = secrets.token_hex(6)
        name = f"{self.queue}/tasks/bridge-smoke-{token}"
        tag = f"bridge-smoke-{token}"
        payload = f"bridge smoke {token}".encode()
        lease: dict[str, int] = {}
        try:
            if not self.step("queue", self.check_queue):
                self.echo("  The other checks need the queue; stopping.")
                return False
            created = self.step("create task", lambda: self.create(name, payload, tag))
            self.step("create it again", lambda: self.create(name, payload, tag), expect=gexc.AlreadyExists)
            self.step("lease (FULL view, by tag)", lambda: self.lease(tag, payload, lease, created))
            self.step(
                "renew with a stale token", lambda: self.renew(name, lease, stale=True), expect=gexc.FailedPrecondition
            )
            self.step("renew", lambda: self.renew(name, lease, stale=False))
            self.step("cancel lease", lambda: self.cancel(name, lease))
            self.step("delete", lambda: self.delete(name, created))
            self.step("get after delete", lambda: self.get(name, created), expect=gexc.NotFound)
            self.step("1 MiB payload", self.big_payload)
            self.step("queue stats", self.stats)
        finally:
            self.clean_up()
        failed = self.results.count("FAIL")
        skipped = self.results.count("skip")
        summary = f"{len(self.results) - failed - skipped} of {len(self.results)} checks passed"
        self.echo(summary + (f", {failed} failed" if failed else "") + (f", {skipped} skipped" if skipped else ""))
        return failed == 0 and skipped == 0

    def check_queue(self) -> str:
        try:
            found = self.call(self.backend.client.get_queue, ct.GetQueueRequest(name=self.queue))
        except gexc.NotFound:
            if not self.backend.create_queues:
                raise
            self.backend.ensure_queue(self.queue, None)
            found = self.call(self.backend.client.get_queue, ct.GetQueueRequest(name=self.queue))
        raw = ct.Queue.pb(found)
        if not raw.HasField("pull_target"):
            raise _Skipped(f"{self.queue_id} is not a pull queue; define it with mode: pull in queue.yaml")
        retry = raw.retry_config
        attempts = retry.max_attempts if retry.WhichOneof("num_attempts") == "max_attempts" else "unlimited"
        state = ct.Queue.State(raw.state).name
        return f"pull queue, {state}, max_attempts {attempts}, tombstone_ttl {raw.tombstone_ttl.seconds}s"

    def create(self, name: str, payload: bytes, tag: str) -> str:
        task = ct.Task(name=name, pull_message=ct.PullMessage(payload=payload, tag=tag))
        made = self.call(self.backend.client.create_task, ct.CreateTaskRequest(parent=self.queue, task=task))
        if name not in self.created:
            self.created.append(name)
        raw = ct.Task.pb(made)
        return f"schedule_time {us_of(raw.schedule_time)} µs, create_time {us_of(raw.create_time)} µs"

    def lease(self, tag: str, payload: bytes, lease: dict[str, int], created: bool) -> str:
        if not created:
            raise _Skipped("needs the task")
        request = ct.LeaseTasksRequest(
            parent=self.queue,
            max_tasks=1,
            lease_duration=duration_pb2.Duration(seconds=LEASE_SECONDS),
            response_view=ct.Task.View.FULL,
            filter=f'tag="{tag}"',
        )
        response = self.call(self.backend.client.lease_tasks, request)
        tasks = [ct.Task.pb(task) for task in response.tasks]
        if len(tasks) != 1:
            raise _Skipped(f"LeaseTasks returned {len(tasks)} tasks for the smoke tag, not 1")
        if tasks[0].pull_message.payload != payload:
            raise _Skipped(
                "LeaseTasks returned the task without its payload (FULL view needs cloudtasks.tasks.fullView)"
            )
        lease["token"] = us_of(tasks[0].schedule_time)
        return f"payload returned, attempt_dispatch_count {tasks[0].status.attempt_dispatch_count}"

    def renew(self, name: str, lease: dict[str, int], *, stale: bool) -> str:
        if "token" not in lease:
            raise _Skipped("needs the lease")
        token = lease["token"] - 1 if stale else lease["token"]
        request = ct.RenewLeaseRequest(
            name=name,
            schedule_time=timestamp_of(token),
            lease_duration=duration_pb2.Duration(seconds=LEASE_SECONDS * 2),
            response_view=ct.Task.View.FULL,
        )
        renewed = ct.Task.pb(self.call(self.backend.client.renew_lease, request))
        lease["token"] = us_of(renewed.schedule_time)
        return f"schedule_time now {lease['token']} µs"

    def cancel(self, name: str, lease: dict[str, int]) -> str:
        if "token" not in lease:
            raise _Skipped("needs the lease")
        token = lease["token"]
        request = ct.CancelLeaseRequest(name=name, schedule_time=timestamp_of(token))
        cancelled = ct.Task.pb(self.call(self.backend.client.cancel_lease, request))
        return f"schedule_time back to {us_of(cancelled.schedule_time)} µs"

    def delete(self, name: str, created: bool) -> str:
        if not created:
            raise _Skipped("needs the task")
        self.call(self.backend.client.delete_task, ct.DeleteTaskRequest(name=name))
        self.created.remove(name)
        return "deleted"

    def get(self, name: str, created: bool) -> str:
        if not created:
            raise _Skipped("needs the task")
        self.call(self.backend.client.get_task, ct.GetTaskRequest(name=name))
        return "the deleted task is still there"

    def big_payload(self) -> str:
        name = f"{self.queue}/tasks/bridge-smoke-big-{secrets.token_hex(6)}"
        self.create(name, b"\xa5" * BIG_PAYLOAD, "")
        self.call(self.backend.client.delete_task, ct.DeleteTaskRequest(name=name))
        self.created.remove(name)
        return f"a {BIG_PAYLOAD}-byte payload was accepted (and deleted)"

    def stats(self) -> str:
        mask = field_mask_pb2.FieldMask(paths=["stats"])
        found = self.call(self.backend.client.get_queue, ct.GetQueueRequest(name=self.queue, read_mask=mask))
        stats = ct.Queue.pb(found).stats
        oldest = us_of(stats.oldest_estimated_arrival_time)
        return f"tasks_count {stats.tasks_count}, oldest_estimated_arrival_time {oldest}"

    def clean_up(self) -> None:
        for name in list(self.created):
            try:
                self.call(self.backend.client.delete_task, ct.DeleteTaskRequest(name=name))
                self.echo(f"  cleaned up {name}")
            except gexc.GoogleAPICallError as exc:
                self.echo(f"  could not delete {name}: {status_of(exc)}; delete it by hand")
            self.created.remove(name)


def smoke(backend: CloudTasksBackend, queue_id: str, echo: Callable[[str], None]) -> bool:
    """Run the check on ``queue_id``; True when every step behaved as the bridge needs."""
    return Smoke(backend, queue_id, echo).run()


@click.command("smoke")
@click.option("--backend", envvar="BRIDGE_BACKEND", required=True, help="cloudtasks://projects/P/locations/L")
@backend_setting_options
@click.option("--queue", default=DEFAULT_QUEUE, show_default=True, help="A pull queue of that location to test on.")
def smoke_command(queue: str, **options: Any) -> None:
    """Check, in a minute, that a project's Cloud Tasks v2beta2 pull queues do what the bridge needs.

    Creates, leases, renews (with a stale token, then the right one), cancels and deletes
    one task of its own, reads the queue's stats, and prints the exact status of every
    call. It deletes what it created. Exit status 1 when a check failed.
    """
    settings = settings_from(**options)
    if urlsplit(settings.backend).scheme != "cloudtasks":
        raise click.ClickException(f"smoke checks a cloudtasks:// backend, not {settings.backend!r}")
    try:
        backend = open_backend(settings.backend, **settings.backend_options())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    assert isinstance(backend, CloudTasksBackend)
    try:
        passed = smoke(backend, queue, click.echo)
    finally:
        backend.close()
    if not passed:
        raise SystemExit(1)
