"""Who may reach which queue: the project allow-list, authentication and ACLs, for every front.

Every front asks the same `Admission`, in the same order, so a caller is refused alike
on v1, v2beta2 (gRPC and HTTP/JSON), batch parts and the console:

1. `identify`: credentials first (``Authorization: Bearer``, or gRPC's ``authorization``
   metadata): a caller who has none learns nothing, not even which queues exist;
2. `project`: the project must be well formed (400: the deployment's `NameRules`,
   which the queue registry carries, so that every front and the console take the
   same names) and served (``--projects`` or
   queue.yaml's ``application:``; any other is 404 ``notFound`` / NOT_FOUND, as v1 answers);
3. `queue`: the queue must exist for queue.yaml (404) and be a pull queue (400), and the
   caller must be allowed the method by its ACL (403), all before the body is read or
   the backend asked.

Calls about no single queue (ListQueues, the console's list of queues) pass `project`
and `admin` (the admins alone, as `bridge.access.acl` gives methods it does not name).
"""

from __future__ import annotations

from collections.abc import Callable

from backends.base import Queue
from backends.limits import project_key
from bridge.access.acl import Policy
from bridge.access.auth import Authenticator
from bridge.access.queues import QueueConfig, QueueRegistry


class Admission:
    """The checks, in order; every v1 call asks them, so they are kept to few calls."""

    def __init__(self, queues: QueueRegistry, authenticator: Authenticator, policy: Policy) -> None:
        self.queues = queues
        self.authenticator = authenticator
        self.policy = policy
        #: The deployment's project and queue names (Google's, or with '_': --dialect).
        self.names = queues.names
        #: The caller's identity (None: anonymous, with ``--auth none``); Unauthenticated
        #: when the credentials (the Authorization header's value) prove nothing.
        self.identify: Callable[[str | None], str | None] = authenticator.identify

    def project(self, project: str) -> str:
        """The project's key (its application id); InvalidArgument when malformed,
        NotFound when this bridge does not serve it."""
        key = project_key(project, self.names)
        self.queues.check_project(key, project)
        return key

    def queue(self, identity: str | None, project: str, name: str, method_id: str) -> tuple[Queue, QueueConfig]:
        """The queue ``project``/``name`` if ``identity`` may call ``method_id`` on it: as
        the backend addresses it, and its definition (a plain pair: every v1 call makes one)."""
        key = project_key(project, self.names)
        self.queues.check_project(key, project)
        config = self.queues.resolve(name)
        self.policy.check(identity, config, method_id)
        return Queue(key, config.name, config.max_leases), config

    def admin(self, identity: str | None, what: str, method_id: str) -> None:
        """A call about no single queue (``what`` names it in a refusal): admins only."""
        self.policy.check(identity, QueueConfig(what), method_id)
