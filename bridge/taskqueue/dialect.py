"""How the v1 API writes its JSON: as Google's service did, or as the local stand-ins of
2017 did, for the workers written against them.

One dialect serves a whole deployment (``--dialect``, ``BRIDGE_DIALECT``). Where they differ:

=====================  ==========================  ===================================
                       ``google`` (the default)    ``legacy-local``
=====================  ==========================  ===================================
empty lease or list    no ``items``                ``"items": []``
``payloadBase64``      URL-safe in and out         standard or URL-safe in, standard out
list's ``kind``        ``taskqueues#tasks``        ``taskqueue#tasks`` (as a lease's)
int64 fields           JSON strings                JSON numbers
project, queue names   Google's                    Google's and ``_`` (``test_queue``)
list's tasks           without payloads            with payloads
an untagged task       no ``tag``                  ``"tag": ""``
=====================  ==========================  ===================================

Nothing else differs: leases, fencing, tombstones, limits, errors and auth are the
bridge's in both, and the stored tasks are the same bytes, so a task inserted in one
dialect reads the same in the other. `bridge.taskqueue.wire` reads these fields; the
handlers of the default dialect are the plain ones (`bridge.taskqueue.handlers.handlers_for`).
The names are the deployment's `NameRules` (`backends.limits.DIALECT_NAMES`): the queue
registry carries them, and the gate's admission resolves every front's projects with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backends.limits import DIALECT_NAMES, NameRules


@dataclass(frozen=True, slots=True)
class Dialect:
    """The choices of one dialect; see the module docstring for what each means."""

    name: str
    names: NameRules
    #: The kind of a list response (a lease's is ``taskqueue#tasks`` in both).
    list_kind: str
    #: Whether an empty lease or list carries ``"items": []`` (else no ``items``).
    empty_items: bool
    #: How an int64 field is written: ``str`` (a JSON string) or ``int`` (a number).
    int64: Callable[[int], str | int]
    #: ``bytes.translate`` table from standard base64 to the payload alphabet sent
    #: (None: standard base64 as it is).
    payload_alphabet: bytes | None
    #: Whether standard base64 (``+``, ``/``) is taken in ``payloadBase64``.
    standard_base64: bool
    #: Whether a list returns payloads.
    list_payloads: bool
    #: The ``tag`` of an untagged task (None: no ``tag`` at all).
    untagged: str | None


GOOGLE = Dialect(
    name="google",
    names=DIALECT_NAMES["google"],
    list_kind="taskqueues#tasks",
    empty_items=False,
    int64=str,
    payload_alphabet=bytes.maketrans(b"+/", b"-_"),
    standard_base64=False,
    list_payloads=False,
    untagged=None,
)
LEGACY_LOCAL = Dialect(
    name="legacy-local",
    names=DIALECT_NAMES["legacy-local"],
    list_kind="taskqueue#tasks",
    empty_items=True,
    int64=int,
    payload_alphabet=None,
    standard_base64=True,
    list_payloads=True,
    untagged="",
)
#: Every dialect, by the name ``--dialect`` takes.
DIALECTS: dict[str, Dialect] = {dialect.name: dialect for dialect in (GOOGLE, LEGACY_LOCAL)}
DEFAULT_DIALECT = GOOGLE.name
