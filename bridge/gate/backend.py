"""The gate at the backend boundary: every backend call of every front passes one hook.

The app gives its fronts ``observed(backend, meter)``, an `ObservedBackend` whose hook
refuses a call whose caller has gone (its deadline passed: `deadline`), remembers the
queue it names and counts what it did (`bridge.ops.metrics.BackendMeter`: inserts,
leases, deletes, dead letters logged, backend errors). One hook for the twenty verbs,
so a verb added to the contract is counted and guarded without a line here.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Any

from backends.base import Backend, Queue
from backends.observed import ObservedBackend, observe
from bridge.errors import DeadlineExceeded
from bridge.ops.metrics import BackendMeter

#: When the current call's caller stops waiting (time.monotonic()), where one is known.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("bridge_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Within the block, backend calls are refused once ``seconds`` from now have passed
    (None: no deadline). A caller that has given up gets no lease it would never see."""
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def observed(backend: Backend, meter: BackendMeter) -> ObservedBackend:
    """``backend`` as the fronts see it: every call through the gate's one hook."""

    remember, effects, failed = meter.remember, meter.effects, meter.failed

    def hook(verb: str, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        ends = _DEADLINE.get()
        if ends is not None and time.monotonic() >= ends:
            raise DeadlineExceeded(f"The caller's deadline passed before the backend was asked ({verb})")
        queue = args[0] if args and args[0].__class__ is Queue else None
        if queue is not None:
            remember(queue)
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:
            failed(verb, exc)
            raise
        effect = effects.get(verb)
        if effect is not None:
            effect(queue, result)
        return result

    return observe(backend, hook)
