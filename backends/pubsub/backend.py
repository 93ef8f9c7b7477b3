"""The Pub/Sub backend: v1beta2 pull queues on Google Cloud Pub/Sub.

URL::

    pubsub://projects/PROJECT[?projects=APP,APP|*&create_queues=true&prefix=tq-&emulator=HOST:PORT&attempts=3&timeout=10]

Options (query string):

- ``projects``: which v1 projects (the app id, partition prefix stripped) a call may
  name, as on ``cloudtasks://``: PROJECT alone by default (others are a 404 saying which
  is served), a comma-separated list of aliases of PROJECT, or ``*`` (each v1 project is
  the Pub/Sub project of the same id).
- ``create_queues``: make a queue's topics and subscriptions on first use (the local
  emulator's way); off, a queue without them is a 404.
- ``prefix``: what the names of the queues' topics and subscriptions start with
  (default ``tq-``; `backends.pubsub.mapping` has the layout).
- ``emulator``: host:port of a Pub/Sub emulator, reached without credentials; the
  ``PUBSUB_EMULATOR_HOST`` variable does the same when the URL names none.
- ``attempts`` (default 3) and ``timeout`` (seconds, default 10): each call's tries on
  UNAVAILABLE or DEADLINE_EXCEEDED before a 503 (publish and pull are tried once: a lost
  reply may have taken effect), and how long each may take.

Credentials: Application Default Credentials, or a service-account key file
(``credentials``, from ``BRIDGE_PUBSUB_CREDENTIALS``).

Mapping: insert publishes (the tag as attribute ``tag``) and answers with the message
id; lease pulls up to numTasks messages at once (``return_immediately``), then sets
their ack deadline to leaseSecs in one call, and answers each as a task whose id is its
lease (`backends.pubsub.mapping`); update/patch set the ack deadline (0 releases the
task); delete acknowledges; taskqueues.get reads the subscription (maxLeases is its
dead-letter policy's max_delivery_attempts); purge seeks the subscription to now.
Every subscription has exactly-once delivery, so an ack id stops working once its
message is handed out again: a renewal or delete by a worker whose lease expired and
was leased again is a 409, as on the other backends.

Limits, each a 400 naming it (``supports`` lacks them; `backends.pubsub.errors` says
why and what to do): insert with an id, with an ETA ahead, get, list, delete by an id
that is not a lease's, groupByTag and tag leases, leases and renewals past 600 s
(Pub/Sub's ack-deadline ceiling: refused, not renewed behind the caller's back, since
no bridge process outlives a lease for sure), stats. maxLeases is 5 to 100 (Pub/Sub's
max_delivery_attempts); another value is refused, and none means 100, since Pub/Sub
counts deliveries (retry_count) only under a dead-letter policy. A lease may return
fewer tasks than are there (Pub/Sub's pull may), and an update answers without payload
and tag. The leaseTimestamp an update carries is not compared: the id's ack id is the
proof of the lease. Admin verbs: list, create, update, delete and purge queues (purge
cannot count what it dropped); no pause, task pages, dead letters, tombstones or activity.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import google.auth.exceptions
import grpc
from google import pubsub_v1 as ps
from google.api_core import exceptions as gexc
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from backends.base import (
    ADMIN_VERBS,
    DEFAULT_TOMBSTONE_SECONDS,
    FEATURES,
    Backend,
    DeadLetter,
    LeaseRequest,
    LeaseResult,
    MinuteActivity,
    NewTask,
    Queue,
    QueueInfo,
    Task,
    TaskPage,
    TaskState,
)
from backends.errors import NotFound, Unsupported
from backends.limits import US
from backends.pubsub import admin, mapping
from backends.pubsub.errors import missing_queue, refused_ack_ids, translated, unsupported

T = TypeVar("T")
DEFAULT_ATTEMPTS = 3
DEFAULT_TIMEOUT = 10.0
#: Seconds before the first retry; each later one waits twice as long.
DEFAULT_BACKOFF = 0.25
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded)
#: An ETA this close ahead is "now": the caller's clock may run a little ahead of ours.
ETA_SLACK_US = US
#: As Google's own transports: a pull of 1,000 tasks of 1 MiB passes gRPC's default 4 MB.
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def _flag(options: dict[str, str], name: str) -> bool:
    value = options.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"option {name} must be true or false, not {value!r}")
    return value in ("true", "1", "yes")


def _clients(credentials: str | None, emulator: str | None) -> tuple[ps.PublisherClient, ps.SubscriberClient]:
    if emulator and credentials:
        raise ValueError("give a Pub/Sub emulator (no credentials) or credentials, not both")
    if emulator:
        channel = grpc.insecure_channel(emulator, options=_UNLIMITED)
        return (
            ps.PublisherClient(transport=PublisherGrpcTransport(channel=channel)),
            ps.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel)),
        )
    try:
        if credentials:
            return (
                ps.PublisherClient.from_service_account_file(credentials),
                ps.SubscriberClient.from_service_account_file(credentials),
            )
        return ps.PublisherClient(), ps.SubscriberClient()
    except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load Pub/Sub credentials ({exc}); run `gcloud auth application-default login`, "
            "or set BRIDGE_PUBSUB_CREDENTIALS to a service-account key file"
        ) from None


def _now_us() -> int:
    return time.time_ns() // 1000


def _lease_seconds(lease_us: int) -> int:
    seconds = lease_us // US
    if seconds > mapping.MAX_ACK_DEADLINE:
        raise unsupported("long_lease", location="leaseSecs")
    return seconds


class PubSubBackend(Backend):
    supports = (ADMIN_VERBS | FEATURES) - {
        "named_insert",
        "delayed_insert",
        "get",
        "list_tasks",
        "delete_unleased",
        "tag_lease",
        "long_lease",
        "stats",
        "any_max_leases",
        "pause_queue",
        "resume_queue",
        "list_tasks_page",
        "dead_letters",
        "clear_tombstones",
        "activity",
    }

    def __init__(
        self,
        publisher: ps.PublisherClient,
        subscriber: ps.SubscriberClient,
        place: mapping.Place,
        *,
        create_queues: bool = False,
        attempts: int = DEFAULT_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if attempts < 1 or timeout <= 0:
            raise ValueError("attempts must be at least 1 and timeout positive")
        self.publisher = publisher
        self.subscriber = subscriber
        self.place = place
        self.create_queues = create_queues
        self.attempts = attempts
        self.timeout = timeout
        self.backoff = DEFAULT_BACKOFF

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        tombstone_seconds: int = DEFAULT_TOMBSTONE_SECONDS,
        credentials: str | None = None,
    ) -> PubSubBackend:
        # Pub/Sub keeps no names, so there are no tombstones to time.
        place, options = mapping.Place.from_url(url)
        try:
            attempts = int(options.get("attempts", DEFAULT_ATTEMPTS))
            timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise ValueError(f"attempts and timeout in {url!r} must be numbers") from None
        create = _flag(options, "create_queues")
        emulator = options.get("emulator") or (None if credentials else os.environ.get("PUBSUB_EMULATOR_HOST"))
        publisher, subscriber = _clients(credentials, emulator)
        return cls(
            publisher,
            subscriber,
            place,
            create_queues=create,
            attempts=attempts,
            timeout=timeout,
        )

    # -- names and calls ------------------------------------------------------------

    def topic(self, queue: Queue) -> str:
        return self.place.topic(self.place.serving(queue.project), queue.name)

    def subscription(self, queue: Queue) -> str:
        return self.place.subscription(self.place.serving(queue.project), queue.name)

    def invoke(self, method: Callable[..., T], request: Any, *, idempotent: bool = False) -> T:
        """Make one call; ``idempotent`` ones again after a transient error, up to
        ``attempts`` times with a growing pause."""
        tries = self.attempts if idempotent else 1
        for number in range(tries):
            try:
                return method(request=request, retry=None, timeout=self.timeout)
            except _TRANSIENT:
                if number + 1 >= tries:
                    raise
                time.sleep(self.backoff * 2**number)
        raise AssertionError("unreachable")

    def _on_queue(self, queue: Queue, call: Callable[[], T]) -> T:
        """Run ``call``, which needs the queue; when Pub/Sub says its topic or subscription
        is missing, make them (``create_queues``) and run it again, or answer 404."""
        try:
            return call()
        except gexc.NotFound as exc:
            if not self.create_queues:
                raise missing_queue(queue.name) from exc
        self.ensure_queue(queue)
        return call()

    def ensure_queue(self, queue: Queue) -> None:
        """Make the queue's topics and subscriptions; those that exist are left alone."""
        topic, subscription = self.topic(queue), self.subscription(queue)
        dead = mapping.dead_letter(topic)
        policy = ps.DeadLetterPolicy(dead_letter_topic=dead, max_delivery_attempts=mapping.max_delivery_attempts(queue))
        steps: list[tuple[Callable[..., Any], Any]] = [
            (self.publisher.create_topic, ps.Topic(name=dead)),
            (self.subscriber.create_subscription, ps.Subscription(name=mapping.dead_letter(subscription), topic=dead)),
            (self.publisher.create_topic, ps.Topic(name=topic)),
            (
                self.subscriber.create_subscription,
                ps.Subscription(
                    name=subscription,
                    topic=topic,
                    ack_deadline_seconds=mapping.SUBSCRIPTION_ACK_DEADLINE,
                    enable_exactly_once_delivery=True,
                    dead_letter_policy=policy,
                ),
            ),
        ]
        with translated("creating the queue's topics and subscriptions", queue=queue.name):
            for method, request in steps:
                try:
                    self.invoke(method, request, idempotent=True)
                except gexc.AlreadyExists:
                    pass

    # -- the contract -----------------------------------------------------------------

    def insert(self, queue: Queue, task: NewTask) -> Task:
        if not task.generated:
            raise unsupported("named_insert")
        now = _now_us()
        if task.eta_us > now + ETA_SLACK_US:
            raise unsupported("delayed_insert")
        mapping.max_delivery_attempts(queue)
        attributes = {mapping.TAG: task.tag} if task.tag else {}
        if not task.payload and not attributes:
            attributes = {mapping.EMPTY: ""}
        request = ps.PublishRequest(
            topic=self.topic(queue), messages=[ps.PubsubMessage(data=task.payload, attributes=attributes)]
        )
        with translated("publishing the task", queue=queue.name):
            # Not retried: a publish whose reply was lost may have made the message.
            response = self._on_queue(queue, lambda: self.invoke(self.publisher.publish, request))
        return Task(response.message_ids[0], task.payload, task.tag, now, now, 0)

    def get(self, queue: Queue, task_id: str) -> Task:
        raise unsupported("get")

    def list_tasks(
        self, queue: Queue, *, with_payloads: bool = False, max_bytes: int = 0, task_bytes: int = 0
    ) -> list[Task]:
        raise unsupported("list_tasks")

    def delete(self, queue: Queue, task_id: str, token_us: int | None = None) -> None:
        lease = mapping.read_lease_id(task_id)
        if lease is None:
            raise unsupported("delete_unleased")
        request = ps.AcknowledgeRequest(subscription=self.subscription(queue), ack_ids=[lease.ack_id])
        with translated("the acknowledgement", queue=queue.name, fence=True):
            self._acknowledge(request)

    def _acknowledge(self, request: ps.AcknowledgeRequest) -> None:
        """Acknowledge; a retry after a lost reply that finds the ack id used up succeeded."""
        try:
            self.invoke(self.subscriber.acknowledge, request)
        except _TRANSIENT:
            try:
                self.invoke(self.subscriber.acknowledge, request, idempotent=True)
            except gexc.BadRequest as exc:
                if not refused_ack_ids(exc):
                    raise

    def lease(self, queue: Queue, request: LeaseRequest) -> LeaseResult:
        if request.group_by_tag:
            raise unsupported("tag_lease")
        seconds = _lease_seconds(request.lease_us)
        mapping.max_delivery_attempts(queue)
        name = self.subscription(queue)
        # return_immediately: a v1 lease answers at once, empty when nothing is there;
        # without it the service holds the call open until a message comes.
        pull = ps.PullRequest(subscription=name, max_messages=request.num_tasks, return_immediately=True)
        with translated("the lease", queue=queue.name):
            # Not retried: a pull whose reply was lost handed messages to nobody; they
            # come back after the subscription's 10 s.
            received = self._on_queue(queue, lambda: self.invoke(self.subscriber.pull, pull)).received_messages
        if not received:
            return LeaseResult()
        eta = _now_us() + seconds * US
        kept = self._set_deadlines(name, [message.ack_id for message in received], seconds, queue)
        return LeaseResult(self._tasks(received, kept, eta))

    def _set_deadlines(self, subscription: str, ack_ids: list[str], seconds: int, queue: Queue) -> set[str]:
        """Give pulled messages the lease's deadline; the ack ids whose deadline was set.

        A message exactly-once delivery refuses is left out of the lease: it returns
        after the subscription's own deadline.
        """
        request = ps.ModifyAckDeadlineRequest(subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=seconds)
        with translated("setting the lease's deadline", queue=queue.name):
            try:
                self.invoke(self.subscriber.modify_ack_deadline, request, idempotent=True)
            except gexc.BadRequest as exc:
                refused = refused_ack_ids(exc)
                if not refused:
                    raise
                return set(ack_ids) - refused
        return set(ack_ids)

    @staticmethod
    def _tasks(received: Iterable[ps.ReceivedMessage], kept: set[str], eta_us: int) -> list[Task]:
        tasks = []
        for message in received:
            if message.ack_id not in kept:
                continue
            raw = ps.PubsubMessage.pb(message.message)
            lease = mapping.Lease(
                message.ack_id,
                mapping.us_of(raw.publish_time.seconds, raw.publish_time.nanos),
                message.delivery_attempt,
            )
            task_id = mapping.lease_id(lease.ack_id, lease.publish_us, lease.attempt)
            tag = raw.attributes.get(mapping.TAG) or None
            tasks.append(mapping.leased_task(lease, task_id, raw.data, tag, eta_us))
        return tasks

    def modify_lease(self, queue: Queue, task_id: str, lease_us: int, token_us: int | None) -> Task:
        seconds = _lease_seconds(lease_us)
        lease = mapping.read_lease_id(task_id)
        if lease is None:
            # Not a lease's id (a name, an insert's message id): no lease goes by it.
            raise NotFound(
                f"Task not found: {task_id} (on Pub/Sub a lease is renewed by the id it gave)", location="task"
            )
        request = ps.ModifyAckDeadlineRequest(
            subscription=self.subscription(queue), ack_ids=[lease.ack_id], ack_deadline_seconds=seconds
        )
        with translated("the lease change", queue=queue.name, fence=True):
            self.invoke(self.subscriber.modify_ack_deadline, request, idempotent=True)
        # Pub/Sub gives nothing back: the payload and tag are not known here.
        return mapping.leased_task(lease, task_id, None, None, _now_us() + seconds * US)

    def read_subscription(self, queue: Queue) -> ps.Subscription:
        request = ps.GetSubscriptionRequest(subscription=self.subscription(queue))
        with translated("reading the queue", queue=queue.name):
            return self.invoke(self.subscriber.get_subscription, request, idempotent=True)

    def queue_info(self, queue: Queue, *, with_stats: bool) -> QueueInfo:
        if with_stats:
            raise unsupported("stats")
        mapping.max_delivery_attempts(queue)
        request = ps.GetSubscriptionRequest(subscription=self.subscription(queue))
        with translated("reading the queue", queue=queue.name):
            found = self._on_queue(
                queue, lambda: self.invoke(self.subscriber.get_subscription, request, idempotent=True)
            )
        return QueueInfo(admin.max_leases_of(found))

    # -- admin verbs (backends.pubsub.admin) ----------------------------------------------

    def list_queues(self, project: str | None = None) -> list[Queue]:
        return admin.list_queues(self, project)

    def create_queue(self, queue: Queue) -> None:
        admin.create_queue(self, queue)

    def update_queue(self, queue: Queue) -> None:
        admin.update_queue(self, queue)

    def delete_queue(self, queue: Queue) -> None:
        admin.delete_queue(self, queue)

    def purge_queue(self, queue: Queue) -> int | None:
        admin.purge_queue(self, queue)
        return None  # a seek says nothing of how many messages it acknowledged

    def pause_queue(self, queue: Queue) -> None:
        raise Unsupported("Pub/Sub cannot pause a subscription; stop the workers instead", feature="pause_queue")

    def resume_queue(self, queue: Queue) -> None:
        raise Unsupported("Pub/Sub cannot pause a subscription, so there is nothing to resume", feature="resume_queue")

    def list_tasks_page(
        self,
        queue: Queue,
        *,
        page_size: int,
        page_token: str | None = None,
        tag: str | None = None,
        state: TaskState | None = None,
        with_payload: bool = False,
        max_bytes: int = 0,
        task_bytes: int = 0,
    ) -> TaskPage:
        raise Unsupported(
            "Pub/Sub cannot list the messages of a subscription without leasing them", feature="list_tasks_page"
        )

    def dead_letters(self, queue: Queue, limit: int = 100) -> list[DeadLetter]:
        raise Unsupported(
            "Pub/Sub keeps the tasks dropped after maxLeases in the subscription "
            f"{mapping.dead_letter(self.subscription(queue))}; pull them from there",
            feature="dead_letters",
        )

    def clear_tombstones(self, queue: Queue) -> int:
        raise Unsupported(
            "Pub/Sub keeps no task names, so there are no tombstones to clear", feature="clear_tombstones"
        )

    def activity(self, queue: Queue) -> list[MinuteActivity]:
        raise Unsupported(
            "Pub/Sub keeps no per-minute counts the bridge can read (Cloud Monitoring does)", feature="activity"
        )

    def ping(self) -> None:
        request = ps.ListTopicsRequest(project=f"projects/{self.place.project}", page_size=1)
        with translated("listing topics"):
            pages = self.invoke(self.publisher.list_topics, request, idempotent=True)
            next(iter(pages.pages), None)

    def close(self) -> None:
        self.publisher.transport.close()  # type: ignore[no-untyped-call]
        self.subscriber.transport.close()  # type: ignore[no-untyped-call]
