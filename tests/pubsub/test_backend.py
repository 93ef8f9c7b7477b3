"""The Pub/Sub backend on the emulator: leases by id across processes, the exactly-once
fence, maxLeases as dead letters, purge, queues, and what it refuses."""

from __future__ import annotations

import time

import pytest
from google import pubsub_v1 as ps

from backends.base import LeaseRequest, NewTask, Queue, Task
from backends.errors import Conflict, Duplicate, NotFound, Unsupported
from backends.limits import US
from backends.pubsub import mapping
from backends.pubsub.backend import PubSubBackend
from tests.pubsub.conftest import Opener
from tests.support.pubsub_emulator import PubSubEmulator

pytestmark = pytest.mark.pubsub

WORK = Queue("demo-app", "work")


def put(backend: PubSubBackend, payload: bytes = b"payload", tag: str | None = None, queue: Queue = WORK) -> str:
    return backend.insert(queue, NewTask("made-up", payload, tag, 0, generated=True)).id


def lease(backend: PubSubBackend, num: int = 10, secs: int = 60, queue: Queue = WORK) -> list[Task]:
    return list(backend.lease(queue, LeaseRequest(num, secs * US)))


def test_a_lease_id_lets_another_process_renew_and_delete_the_task(open_pubsub: Opener) -> None:
    first, second = open_pubsub(), open_pubsub()
    message_id = put(first, b"frame 1", tag="movie-7")
    [task] = lease(first)
    assert (task.payload, task.tag, task.retry_count) == (b"frame 1", "movie-7", 1)
    assert task.id != message_id and task.id.startswith("L") and len(task.id) <= 500
    renewed = second.modify_lease(WORK, task.id, 120 * US, task.eta_us)
    assert (renewed.id, renewed.retry_count, renewed.enqueue_us) == (task.id, 1, task.enqueue_us)
    assert renewed.payload is None and renewed.eta_us > task.eta_us
    second.delete(WORK, task.id)
    assert lease(first, secs=0) == []


def test_a_lease_handed_out_again_fences_off_its_old_id(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    put(backend)
    [old] = lease(backend)
    backend.modify_lease(WORK, old.id, 0, None)  # released: leasable at once
    [new] = lease(backend)
    assert new.id != old.id and new.retry_count == 2
    for stale in (lambda: backend.modify_lease(WORK, old.id, 60 * US, None), lambda: backend.delete(WORK, old.id)):
        with pytest.raises(Conflict):
            stale()
    backend.delete(WORK, new.id)
    with pytest.raises(Conflict):
        backend.delete(WORK, new.id)


def test_an_expired_lease_is_leased_again_and_its_old_id_fails(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    put(backend)
    [old] = lease(backend, secs=1)
    time.sleep(2)
    [new] = lease(backend)
    assert new.retry_count == 2
    with pytest.raises(Conflict):
        backend.delete(WORK, old.id)
    backend.delete(WORK, new.id)


def test_a_lease_takes_at_most_num_tasks_and_leaves_the_rest(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    for number in range(5):
        put(backend, str(number).encode())
    first = lease(backend, num=3)
    assert len(first) == 3
    rest = lease(backend, num=10)
    assert sorted(task.payload or b"" for task in first + rest) == [b"0", b"1", b"2", b"3", b"4"]


def test_an_empty_untagged_task_is_published_and_leased_as_it_was(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    put(backend, b"")
    [task] = lease(backend)
    assert (task.payload, task.tag) == (b"", None)


def test_a_task_leased_max_leases_times_goes_to_the_dead_letter_subscription(
    open_pubsub: Opener, pubsub_emulator: PubSubEmulator, prefix: str
) -> None:
    backend = open_pubsub()
    limited = Queue("demo-app", "limited", max_leases=5)
    put(backend, b"poison", queue=limited)
    counts = []
    for _ in range(7):
        tasks = lease(backend, secs=0, queue=limited)
        counts += [task.retry_count for task in tasks]
    assert counts == [1, 2, 3, 4, 5]
    assert backend.queue_info(limited, with_stats=False).max_leases == 5
    dead = f"projects/demo-app/subscriptions/{prefix}limited.dead"
    pulled = backend.invoke(backend.subscriber.pull, ps.PullRequest(subscription=dead, max_messages=10))
    [letter] = pulled.received_messages
    assert letter.message.data == b"poison"


@pytest.mark.parametrize("max_leases", [1, 4, 101])
def test_a_max_leases_pubsub_cannot_keep_is_refused_before_anything_is_made(
    open_pubsub: Opener, max_leases: int
) -> None:
    backend = open_pubsub()
    queue = Queue("demo-app", "odd", max_leases=max_leases)
    for call in (
        lambda: put(backend, queue=queue),
        lambda: lease(backend, queue=queue),
        lambda: backend.create_queue(queue),
    ):
        with pytest.raises(Unsupported, match="5 to 100") as caught:
            call()
        assert caught.value.feature == "any_max_leases" and caught.value.feature not in backend.supports
    assert backend.list_queues("demo-app") == []


def test_leases_and_renewals_past_600_seconds_are_refused(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    put(backend)
    with pytest.raises(Unsupported, match="600") as caught:
        lease(backend, secs=601)
    assert caught.value.feature == "long_lease"
    [task] = lease(backend, secs=600)
    with pytest.raises(Unsupported, match="600"):
        backend.modify_lease(WORK, task.id, 601 * US, None)
    backend.modify_lease(WORK, task.id, 600 * US, None)


@pytest.mark.parametrize(
    ("feature", "call"),
    [
        ("named_insert", lambda b: b.insert(WORK, NewTask("t1", b"x"))),
        (
            "delayed_insert",
            lambda b: b.insert(WORK, NewTask("t", b"x", eta_us=(int(time.time()) + 60) * US, generated=True)),
        ),
        ("get", lambda b: b.get(WORK, "1")),
        ("list_tasks", lambda b: b.list_tasks(WORK)),
        ("delete_unleased", lambda b: b.delete(WORK, "1")),
        ("tag_lease", lambda b: b.lease(WORK, LeaseRequest(1, US, group_by_tag=True))),
        ("stats", lambda b: b.queue_info(WORK, with_stats=True)),
    ],
)
def test_each_declared_feature_is_refused_with_its_name(open_pubsub: Opener, feature: str, call) -> None:
    backend = open_pubsub()
    assert feature not in backend.supports
    with pytest.raises(Unsupported) as caught:
        call(backend)
    assert caught.value.feature == feature and caught.value.message.startswith("Pub/Sub")


def test_renewing_by_an_id_that_is_no_lease_is_not_found(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    message_id = put(backend)
    for task_id in (message_id, "nope", "L!!"):
        with pytest.raises(NotFound):
            backend.modify_lease(WORK, task_id, 60 * US, None)


def test_a_purge_drops_every_task_leased_or_not(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    put(backend, b"a")
    put(backend, b"b")
    [leased] = lease(backend, num=1)
    assert backend.purge_queue(WORK) is None
    assert lease(backend, secs=0) == []
    with pytest.raises(Conflict):
        backend.delete(WORK, leased.id)
    put(backend, b"after")
    assert [task.payload for task in lease(backend)] == [b"after"]


def test_queues_are_made_listed_changed_and_deleted(open_pubsub: Opener) -> None:
    backend = open_pubsub()
    backend.create_queue(Queue("demo-app", "made", max_leases=7))
    put(backend)
    with pytest.raises(Duplicate):
        backend.create_queue(Queue("demo-app", "made"))
    assert backend.list_queues("demo-app") == [Queue("demo-app", "made", 7), Queue("demo-app", "work", 100)]
    backend.update_queue(Queue("demo-app", "made", max_leases=20))
    assert backend.queue_info(Queue("demo-app", "made"), with_stats=False).max_leases == 20
    backend.delete_queue(Queue("demo-app", "made"))
    assert backend.list_queues("demo-app") == [Queue("demo-app", "work", 100)]
    for call in (
        lambda: backend.delete_queue(Queue("demo-app", "made")),
        lambda: backend.update_queue(Queue("demo-app", "nowhere")),
    ):
        with pytest.raises(NotFound):
            call()


def test_a_queue_named_with_an_underscore_is_kept_and_listed(open_pubsub: Opener) -> None:
    # Pub/Sub's names hold '_', as a legacy-local bridge's queue names (test_queue) may.
    backend = open_pubsub()
    underscored = Queue("demo-app", "test_queue")
    put(backend, b"x", queue=underscored)
    put(backend, b"y")
    assert [task.payload for task in lease(backend, queue=underscored)] == [b"x"]
    assert [queue.name for queue in backend.list_queues("demo-app")] == ["test_queue", "work"]


def test_without_create_queues_an_unknown_queue_is_a_404_that_says_how_to_make_it(
    open_pubsub: Opener, pubsub_emulator: PubSubEmulator, prefix: str
) -> None:
    backend = open_pubsub(f"emulator={pubsub_emulator.address}&prefix={prefix}")
    for call in (lambda: put(backend), lambda: lease(backend), lambda: backend.queue_info(WORK, with_stats=False)):
        with pytest.raises(NotFound, match="create_queues=true"):
            call()


def test_a_bridge_serves_its_project_and_its_aliases_only(
    open_pubsub: Opener, pubsub_emulator: PubSubEmulator, prefix: str
) -> None:
    backend = open_pubsub(f"emulator={pubsub_emulator.address}&prefix={prefix}&create_queues=true&projects=my-app")
    put(backend, b"aliased", queue=Queue("my-app", "work"))
    assert backend.list_queues("my-app") == [Queue("my-app", "work", 100)]
    with pytest.raises(NotFound, match="my-app"):
        put(backend, queue=Queue("other-app", "work"))


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("pubsub://projects/p1?prefix=goog-", "prefix"),
        ("pubsub://projects/p1?prefix=1x", "prefix"),
        ("pubsub://projects/p1?tags=1", "unknown option"),
        ("pubsub://topics/p1", "expected pubsub://projects/PROJECT"),
        ("pubsub://projects/p1?create_queues=maybe", "true or false"),
    ],
)
def test_a_bad_url_is_refused_with_what_to_write(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        PubSubBackend.from_url(url)


def test_credentials_and_an_emulator_together_are_refused(tmp_path) -> None:
    key = tmp_path / "key.json"
    key.write_text("{}")
    with pytest.raises(ValueError, match="not both"):
        PubSubBackend.from_url("pubsub://projects/p1?emulator=127.0.0.1:1", credentials=str(key))


def test_lease_ids_carry_the_ack_id_and_nothing_else_reads_as_one() -> None:
    for ack_id in ("projects/p/subscriptions/s:1", "RVNEUAYWLF1GSFE3GQhoUQ5PXiM_NSAoRRIIBCgUeCldSVBAMBBQ" * 4):
        task_id = mapping.lease_id(ack_id, 1_796_690_801_704_000, 3)
        assert mapping.read_lease_id(task_id) == mapping.Lease(ack_id, 1_796_690_801_704_000, 3)
        assert len(task_id) <= 500 and task_id.replace("-", "").replace("_", "").isalnum()
    for other in ("1234", "frame-1", "L", "L$", "LAAAA"):
        assert mapping.read_lease_id(other) is None
