"""The bridge against App Engine's own pull-queue implementation, call by call.

Seeded random sequences of v1 calls run through the Google API client on the bridge
(memory, Redis, Redis Cluster) and on the App Engine SDK's taskqueue_stub in this
process (tests/support/appengine_stub.py), with one clock: each answer of the bridge
that shows its clock (an insert's enqueueTimestamp, a lease's or renewal's
leaseTimestamp less its seconds) sets the stub's clock to the same microsecond, the
other calls run on the stub at the bridge's clock read just before them, and
``harness.advance`` moves both. Time moves in whole seconds and every call takes some
real time, so no ETA ever equals the moment of a call ("eta-equal-now" in
KNOWN_DIFFERENCES.md).

Every answer is compared as it comes: which tasks a lease returns and in what order,
with their ETAs to the microsecond, retry counts, tags and payloads; inserts, renewals
and gets; errors by status, reason and whether they say that the name was deleted;
lists; and stats. The differences the bridge keeps by decision are normalised where
`Reference` says so, and nowhere else.

``REFERENCE_SEQUENCES`` (default 24) sets how many sequences of ``STEPS`` calls run on
each backend and ``REFERENCE_SEED`` runs one seed alone; a failure names its seed and
shows the steps that led to it.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from backends.redis.backend import RedisBackend
from tests.conftest import unavailable
from tests.support.api import b64
from tests.support.appengine_stub import NORMALISED, Answer, Reference, Refused, Sdk, Seen, Stats, find_sdk
from tests.support.harness import BACKENDS, Harness
from tests.support.http import BridgeServer
from tests.support.known_differences import FILE

US = 1_000_000
DAY = 24 * 3600
MAX_PAYLOAD = 1024 * 1024
SEQUENCES = int(os.environ.get("REFERENCE_SEQUENCES", "24"))
STEPS = 40
#: Queues with their task_retry_limit (None: unlimited), in the queue.yaml both read.
QUEUES: dict[str, int | None] = {"work": None, "limited-1": 1, "limited-2": 2, "limited-3": 3}
NAMES = ("a", "b", "c", "d", "e", "f")
#: How often each call is made, in parts of the whole.
CALLS = {"insert": 30, "lease": 25, "modify": 10, "delete": 8, "get": 7, "list": 5, "stats": 4, "purge": 2}
ADVANCE_PARTS = 10


@pytest.fixture(scope="session")
def sdk() -> Sdk:
    root = find_sdk()
    if root is None:
        unavailable(
            "the App Engine SDK is not installed (gcloud's google-cloud-cli-app-engine-python, "
            "or APPENGINE_SDK=<its google_appengine folder>)"
        )
    assert root is not None
    return Sdk.load(root)


@pytest.fixture
def queue_yaml(tmp_path: Path) -> Path:
    lines = ["queue:"]
    for name, limit in QUEUES.items():
        lines += [f"- name: {name}", "  mode: pull"]
        if limit is not None:
            lines += ["  retry_parameters:", f"    task_retry_limit: {limit}"]
    path = tmp_path / "queue.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _seen(resource: dict[str, Any], *, enqueue: bool = True) -> Seen:
    payload = resource.get("payloadBase64")
    return Seen(
        resource["id"],
        int(resource["leaseTimestamp"]),
        resource["retry_count"],
        resource.get("tag"),
        None if payload is None else base64.urlsafe_b64decode(payload),
        int(resource["enqueueTimestamp"]) // US if enqueue else None,
    )


def _execute(request: Any) -> tuple[Any, Refused | None]:
    """The JSON answer, or the error it was."""
    try:
        return request.execute(), None
    except HttpError as exc:
        error = json.loads(exc.content)["error"]
        said_deleted = bool(re.search(r"deleted|dropped", error["message"]))
        return None, Refused(error["code"], error["errors"][0]["reason"], said_deleted)


@dataclass
class Sequence:
    """One sequence of calls on one queue: the bridge's side, the stub's, and what a
    worker would know of the tasks (the last leaseTimestamp each one showed)."""

    api: Any
    server: BridgeServer
    harness: Harness
    reference: Reference
    project: str
    queue: str
    rng: random.Random
    #: Whether the bridge's backend knows the queue yet (see `step`).
    used: bool = False
    names: list[str] = field(default_factory=lambda: list(NAMES))
    known: dict[str, int] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A resource of the client builds every method anew: once per sequence.
        self.tasks = self.api.tasks()
        self.taskqueues = self.api.taskqueues()

    def clock(self) -> int:
        """The bridge's clock: the machine's (Redis and fakeredis read the same one) plus
        the shift that ``harness.advance`` adds."""
        backend = self.harness.backend
        assert isinstance(backend, RedisBackend)
        return time.time_ns() // 1000 + backend.clock_shift_us

    def step(self) -> None:
        """One random call, made on both sides and compared."""
        kinds = [*CALLS, "advance"]
        kind = self.rng.choices(kinds, [*CALLS.values(), ADVANCE_PARTS])[0]
        if kind == "purge" and not self.used:
            # A queue of queue.yaml exists on the bridge's backend once used (an insert
            # or a lease); before, the console's purge answers 404 (issue 21, part 3).
            kind = "list"
        before = self.clock()
        self.reference.now_us = before
        if kind == "advance":
            seconds = self.rng.choice([1, 5, 10, 30, 60, 600, 3600])
            self.harness.advance(seconds)
            self.trace.append(f"advance {seconds} s")
            return
        described, bridge, stub = getattr(self, kind)()
        after = self.clock()
        self.trace.append(f"{described}\n      bridge: {bridge}\n      stub:   {stub}")
        assert before <= self.reference.now_us <= after, "the bridge's clock is not the machine's plus its shift"
        assert bridge == stub, "the bridge and App Engine's stub answer differently"
        self.used = self.used or (kind in ("insert", "lease") and not isinstance(bridge, Refused))
        for seen in bridge if isinstance(bridge, list) else [bridge]:
            if isinstance(seen, Seen):
                self.known[seen.id] = seen.eta_us

    def _on_bridge_clock(self, now_us: int) -> None:
        """Run the stub's side of this call at the microsecond the bridge's answer shows."""
        self.reference.now_us = now_us

    def _task_name(self) -> str:
        return self.rng.choice(self.names)

    # -- the calls ------------------------------------------------------------------

    def insert(self) -> tuple[str, Answer, Answer]:
        rng, now = self.rng, self.reference.now_us
        name = rng.choices([self._task_name(), None, "bad.name"], [75, 22, 3])[0]
        size = rng.choices([rng.randrange(0, 64), MAX_PAYLOAD - 4096, MAX_PAYLOAD + 1], [98, 1, 1])[0]
        payload = rng.randbytes(size)
        tag = rng.choices([None, "red", "blue", "", "t" * 501, "é" * 200, "é" * 251], [40, 20, 20, 5, 5, 5, 5])[0]
        when = rng.choices(
            ["now", "-30s", "-2h", "+30s", "+10m", "+29d", "+31d", "zero", "negative"], [55, 8, 5, 8, 8, 3, 3, 5, 5]
        )[0]
        offsets = {"-30s": -30, "-2h": -7200, "+30s": 30, "+10m": 600, "+29d": 29 * DAY, "+31d": 31 * DAY}
        eta = {"now": None, "zero": 0, "negative": -5}.get(when, now + offsets.get(when, 0) * US)
        body: dict[str, Any] = {"payloadBase64": b64(payload)}
        if name is not None:
            body["id"] = name
        if tag is not None:
            body["tag"] = tag
        if eta is not None:
            body["leaseTimestamp"] = str(eta)
        found, refused = _execute(self.tasks.insert(project=self.project, taskqueue=self.queue, body=body))
        bridge: Answer = refused or _seen(found)
        stub_name = name
        if found is not None:
            self._on_bridge_clock(int(found["enqueueTimestamp"]))
            if name is None:
                # generated-names: the bridge makes random names, the stub "task1",
                # "task2", … (taskqueue_stub.py:806); the stub is given the bridge's.
                stub_name = found["id"]
                self.reference.normalised["generated-names"] += 1
                self.names.append(found["id"])
        stub = self.reference.insert(self.queue, stub_name, payload, tag, eta)
        shown = tag if tag is None or len(tag) < 20 else f"{tag[:2]}… ({len(tag.encode())} bytes)"
        return f"insert {name} ({size} bytes, tag {shown!r}, eta {when})", bridge, stub

    def lease(self) -> tuple[str, Answer, Answer]:
        rng = self.rng
        num = rng.choices([1, 2, 3, 5, 10, 0, 1001], [20, 20, 15, 15, 25, 3, 2])[0]
        secs = rng.choices([0, 10, 30, 60, 600, -1, 604801], [25, 15, 20, 20, 16, 2, 2])[0]
        group_by_tag = rng.random() < 0.4
        if group_by_tag:
            tag = rng.choices([None, "", "red", "blue", "green"], [40, 20, 20, 15, 5])[0]
        else:
            tag = rng.choices([None, "red"], [95, 5])[0]
        options: dict[str, Any] = {"groupByTag": True} if group_by_tag else {}
        if tag is not None:
            options["tag"] = tag
        request = self.tasks.lease(
            project=self.project, taskqueue=self.queue, numTasks=num, leaseSecs=secs, **options
        )
        found, refused = _execute(request)
        bridge: Answer = refused
        if found is not None:
            items = found.get("items", [])
            bridge = [_seen(item, enqueue=False) for item in items]
            if items:
                self._on_bridge_clock(int(items[0]["leaseTimestamp"]) - secs * US)
        stub = self.reference.lease(self.queue, num, secs, group_by_tag, tag)
        return f"lease {num} for {secs} s, groupByTag={group_by_tag}, tag={tag!r}", bridge, stub

    def modify(self) -> tuple[str, Answer, Answer]:
        rng = self.rng
        name = rng.choice(sorted(self.known)) if self.known and rng.random() < 0.7 else self._task_name()
        secs = rng.choice([0, 10, 30, 120])
        token = rng.choices(["current", "stale", "none"], [70, 15, 15])[0]
        known = self.known.get(name)
        token_us = None if token == "none" or known is None else known - (US if token == "stale" else 0)
        body = {} if token_us is None else {"leaseTimestamp": str(token_us)}
        method = rng.choice([self.tasks.update, self.tasks.patch])
        found, refused = _execute(
            method(project=self.project, taskqueue=self.queue, task=name, newLeaseSeconds=secs, body=body)
        )
        bridge: Answer = refused or _seen(found)
        if found is not None:
            self._on_bridge_clock(int(found["leaseTimestamp"]) - secs * US)
        stub = self.reference.modify_lease(self.queue, name, secs, token_us)
        return f"update {name} for {secs} s with {token} token", bridge, stub

    def delete(self) -> tuple[str, Answer, Answer]:
        name = self._task_name()
        _, refused = _execute(self.tasks.delete(project=self.project, taskqueue=self.queue, task=name))
        return f"delete {name}", refused, self.reference.delete(self.queue, name)

    def get(self) -> tuple[str, Answer, Answer]:
        name = self._task_name()
        found, refused = _execute(self.tasks.get(project=self.project, taskqueue=self.queue, task=name))
        return f"get {name}", refused or _seen(found), self.reference.get(self.queue, name)

    def list(self) -> tuple[str, Answer, Answer]:
        found, refused = _execute(self.tasks.list(project=self.project, taskqueue=self.queue))
        bridge: Answer = refused or [_seen(item) for item in found.get("items", [])]
        return "list", bridge, self.reference.list_tasks(self.queue)

    def stats(self) -> tuple[str, Answer, Answer]:
        request = self.taskqueues.get(project=self.project, taskqueue=self.queue, getStats=True)
        found, refused = _execute(request)
        bridge: Answer = refused
        if found is not None:
            stats = found["stats"]
            bridge = Stats(stats["totalTasks"], int(stats["oldestTask"]), found.get("maxLeases"))
        return "stats", bridge, self.reference.stats(self.queue)

    def purge(self) -> tuple[str, Answer, Answer]:
        # The v1 API has no purge: the bridge's is the console's, App Engine's the SDK's.
        path = f"/console/api/projects/{self.project.split('~')[-1]}/queues/{self.queue}/actions/purge"
        reply = self.server.request("POST", path, {}, headers={"Content-Type": "application/json"})
        bridge = None if reply.status == 200 else Refused(reply.status, "console")
        self.reference.purge(self.queue)
        return "purge", bridge, None


def _seeds() -> list[int]:
    chosen = os.environ.get("REFERENCE_SEED")
    return [int(chosen)] if chosen else list(range(SEQUENCES))


@pytest.mark.parametrize(
    "variant", [p for p in BACKENDS if p.id in ("memory", "redis", "redis-cluster")], indirect=True
)
def test_the_bridge_answers_every_call_as_app_engines_own_stub_does(
    sdk: Sdk, make_bridge: Any, harness: Harness, queue_yaml: Path
) -> None:
    server = make_bridge(queues=queue_yaml)
    api = server.api()
    normalised: Counter[str] = Counter()
    steps = 0
    # One line per sequence that differs, and the whole story of the first.
    failures: list[str] = []
    first = ""
    for seed in _seeds():
        rng = random.Random(seed)
        queue = rng.choice(sorted(QUEUES))
        reference = Reference(sdk, queue_yaml, 0)
        run = Sequence(api, server, harness, reference, f"s~reference-{seed}", queue, rng)
        try:
            for _ in range(STEPS):
                run.step()
                steps += 1
        except AssertionError as failure:
            # The sequence stops at its first difference (the two sides no longer hold
            # the same tasks); the others run on, so that one run shows every kind.
            failures.append(f"seed {seed} ({queue}), call {len(run.trace)}: {run.trace[-1].splitlines()[0]}")
            if not first:
                steps_shown = "\n".join(f"  {i + 1:2d}. {line}" for i, line in enumerate(run.trace))
                first = f"seed {seed}, queue {queue}: {failure}\n{steps_shown}"
        normalised += reference.normalised
    counts = ", ".join(f"{key} {count}" for key, count in sorted(normalised.items()))
    print(f"\n{len(_seeds())} sequences, {steps} calls compared; normalised: {counts}")
    assert not failures, f"{len(failures)} sequences differ:\n" + "\n".join(failures) + f"\n\nThe first:\n{first}"


def test_the_stubs_differences_listed_are_the_ones_the_test_normalises() -> None:
    text = FILE.read_text()
    section = text.split("# Differences from App Engine's own stub", 1)[1].split("\n# ", 1)[0]
    keys = set(re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|", section, re.MULTILINE))
    assert keys == NORMALISED
