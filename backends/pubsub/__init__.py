"""The Google Cloud Pub/Sub backend: v1beta2 pull-queue workers on Pub/Sub, unchanged.

`backend` holds the verbs, `mapping` how queues and tasks are topics, subscriptions and
messages (names, lease ids, limits), and `errors` the service's errors mapped where they
enter. What Pub/Sub cannot do is declared in ``PubSubBackend.supports`` and refused with
Unsupported (a 400 naming it), never answered with an invented or empty result.
"""
