"""A backend seen through one hook: every verb of the contract, forwarded to another backend.

``observe(inner, hook)`` is a `Backend` whose every verb (the core ones, the
admin verbs, ``ping`` and ``close``) calls ``hook(verb, bound, args, kwargs)``, where
``bound`` is ``inner``'s own method; the hook calls it (or refuses to) and returns what
it returns. The bridge counts, logs and guards backend calls there (`bridge.gate.backend`),
once for every verb, instead of in one hand-written forwarder per verb. The wrapper
declares the admin verbs ``inner`` does (``supports``), so it answers for them alike.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, cast

from backends.base import VERBS, Backend

#: The hook: (verb name, the inner backend's bound method, positional and keyword arguments).
Hook = Callable[[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]


class ObservedBackend(Backend):
    """``inner``, every verb of which goes through ``hook``; see the module docstring."""

    def __init__(self, inner: Backend, hook: Hook) -> None:
        self.inner = inner
        self.hook = hook
        self.supports = inner.supports


def _forward(verb: str) -> Callable[..., Any]:
    def forward(self: ObservedBackend, *args: Any, **kwargs: Any) -> Any:
        return self.hook(verb, getattr(self.inner, verb), args, kwargs)

    forward.__name__ = forward.__qualname__ = verb
    forward.__doc__ = getattr(Backend, verb).__doc__
    return forward


def observe(inner: Backend, hook: Hook) -> ObservedBackend:
    """``inner`` with every verb through ``hook``."""
    # The verbs are set on the class below, in a loop mypy does not follow.
    return ObservedBackend(inner, hook)  # type: ignore[abstract]


for _verb in VERBS:
    setattr(ObservedBackend, _verb, _forward(_verb))
abc.update_abstractmethods(cast(type, ObservedBackend))
assert not ObservedBackend.__abstractmethods__
