"""Which identity may call which method on which queue, from queue.yaml ACLs.

    writer_email (producers)   tasks.insert
    user_email (consumers)     tasks.get, list, lease, update, patch, delete
    either                     taskqueues.get
    --admins (BRIDGE_ADMINS)   every method on every queue (the acl's adminEmails, as
                               App Engine's application administrators)

A queue whose entry has no ``acl`` (and every queue when there is no queue.yaml) is open
to every authenticated caller, or to admins only with ``--acl-default closed``. A queue
with any ACL entry is governed by its entries alone: writers but no users means nobody
but the admins consumes. Emails are compared without regard to case. A method this table
does not name is for admins only. With ``--auth none`` nobody is checked.

The check reads only the queue's definition and the method, never the backend, and the
refusal names only the caller, the method and the queue: it is the same whether or not
the task exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.errors import PermissionDenied
from bridge.access.queues import QueueConfig
from bridge.settings import Settings

PRODUCER = "producer"
CONSUMER = "consumer"

#: Discovery method id -> the roles that may call it.
ROLES: dict[str, frozenset[str]] = {
    "taskqueue.taskqueues.get": frozenset({PRODUCER, CONSUMER}),
    "taskqueue.tasks.insert": frozenset({PRODUCER}),
    "taskqueue.tasks.get": frozenset({CONSUMER}),
    "taskqueue.tasks.list": frozenset({CONSUMER}),
    "taskqueue.tasks.lease": frozenset({CONSUMER}),
    "taskqueue.tasks.update": frozenset({CONSUMER}),
    "taskqueue.tasks.patch": frozenset({CONSUMER}),
    "taskqueue.tasks.delete": frozenset({CONSUMER}),
}


@dataclass(frozen=True)
class Policy:
    #: Casefolded emails allowed everything.
    admins: frozenset[str] = frozenset()
    #: Whether a queue without an ACL serves every authenticated caller.
    default_open: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(frozenset(email.casefold() for email in settings.admins), settings.acl_default == "open")

    def check(self, identity: str | None, config: QueueConfig, method_id: str) -> None:
        """Nothing when ``identity`` may call ``method_id`` on the queue; PermissionDenied when not."""
        if identity is None or self.allows(identity, config, method_id):
            return
        method = method_id.removeprefix("taskqueue.")
        raise PermissionDenied(f"Permission denied: {identity} may not call {method} on queue {config.name}")

    def allows(self, identity: str, config: QueueConfig, method_id: str) -> bool:
        email = identity.casefold()
        if email in self.admins:
            return True
        roles = ROLES.get(method_id)
        if roles is None:
            return False
        if not config.consumers and not config.producers:
            return self.default_open
        return (CONSUMER in roles and email in _folded(config.consumers)) or (
            PRODUCER in roles and email in _folded(config.producers)
        )


def _folded(emails: tuple[str, ...]) -> set[str]:
    return {email.casefold() for email in emails}
