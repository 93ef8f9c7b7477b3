"""The admin verbs of the Pub/Sub backend, each on the service's own calls.

    list_queues       ListSubscriptions of the project, every page: those named by the prefix
    create_queue      GetSubscription (one that exists is Duplicate), then the queue's topics
                      and subscriptions (`PubSubBackend.ensure_queue`)
    update_queue      GetSubscription (an unknown queue is NotFound), then UpdateSubscription
                      of the dead-letter policy (maxLeases, 5 to 100)
    delete_queue      DeleteSubscription, DeleteTopic, and the same of the dead-letter pair
    purge_queue       Seek of the subscription to now: every message published before is
                      acknowledged (leased ones too); how many is not said, so None

The rest are declared, not invented (``PubSubBackend.supports`` lacks them): Pub/Sub has
no pause, no listing of messages, no names to tombstone and no per-minute counts, and it
keeps the dead letters in the dead-letter subscription, for a Pub/Sub client to pull.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from google import pubsub_v1 as ps
from google.api_core import exceptions as gexc
from google.protobuf import field_mask_pb2, timestamp_pb2

from backends.base import Queue
from backends.errors import Duplicate, NotFound
from backends.pubsub import mapping
from backends.pubsub.errors import translated

if TYPE_CHECKING:
    from backends.pubsub.backend import PubSubBackend


def max_leases_of(subscription: ps.Subscription) -> int | None:
    """maxLeases as the subscription's dead-letter policy holds it (None: no policy)."""
    attempts = ps.Subscription.pb(subscription).dead_letter_policy.max_delivery_attempts
    return int(attempts) or None


def list_queues(backend: PubSubBackend, project: str | None) -> list[Queue]:
    v1_project = project if project is not None else backend.place.project
    request = ps.ListSubscriptionsRequest(project=f"projects/{backend.place.serving(v1_project)}")
    found = []
    with translated("listing queues"):
        for subscription in backend.invoke(backend.subscriber.list_subscriptions, request, idempotent=True):
            name = backend.place.queue_of(subscription.name)
            if name is not None:
                found.append(Queue(v1_project, name, max_leases_of(subscription)))
    return sorted(found, key=lambda queue: queue.name)


def create_queue(backend: PubSubBackend, queue: Queue) -> None:
    try:
        backend.read_subscription(queue)
    except NotFound:
        backend.ensure_queue(queue)
        return
    raise Duplicate(f"Queue {queue.name} exists already: Pub/Sub has its subscription", location="taskqueue")


def update_queue(backend: PubSubBackend, queue: Queue) -> None:
    policy = ps.DeadLetterPolicy(
        dead_letter_topic=mapping.dead_letter(backend.topic(queue)),
        max_delivery_attempts=mapping.max_delivery_attempts(queue),
    )
    backend.read_subscription(queue)
    request = ps.UpdateSubscriptionRequest(
        subscription=ps.Subscription(name=backend.subscription(queue), dead_letter_policy=policy),
        update_mask=field_mask_pb2.FieldMask(paths=["dead_letter_policy"]),
    )
    with translated("changing the queue", queue=queue.name):
        backend.invoke(backend.subscriber.update_subscription, request, idempotent=True)


def delete_queue(backend: PubSubBackend, queue: Queue) -> None:
    subscription, topic = backend.subscription(queue), backend.topic(queue)
    subscriber, publisher = backend.subscriber, backend.publisher
    with translated("deleting the queue", queue=queue.name):
        # The subscription first: an unknown queue is NotFound before anything changes.
        backend.invoke(subscriber.delete_subscription, ps.DeleteSubscriptionRequest(subscription=subscription))
        dead_subscription, dead_topic = mapping.dead_letter(subscription), mapping.dead_letter(topic)
        rest = (
            (publisher.delete_topic, ps.DeleteTopicRequest(topic=topic)),
            (subscriber.delete_subscription, ps.DeleteSubscriptionRequest(subscription=dead_subscription)),
            (publisher.delete_topic, ps.DeleteTopicRequest(topic=dead_topic)),
        )
        for method, request in rest:
            try:
                backend.invoke(method, request, idempotent=True)
            except gexc.NotFound:
                pass


def purge_queue(backend: PubSubBackend, queue: Queue) -> None:
    now_ns = time.time_ns()
    moment = timestamp_pb2.Timestamp(seconds=now_ns // 10**9, nanos=now_ns % 10**9)
    request = ps.SeekRequest(subscription=backend.subscription(queue), time=moment)
    with translated("purging the queue", queue=queue.name):
        backend.invoke(backend.subscriber.seek, request, idempotent=True)
