"""The options of a compat run, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PROJECT = "s~compat-check"
DEFAULT_QUEUE_PREFIX = "compat"
#: How far an endpoint's clock may be from this machine's, in seconds.
DEFAULT_CLOCK_TOLERANCE = 0.5
#: Seconds to wait for one HTTP answer.
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Options:
    project: str = DEFAULT_PROJECT
    queue_prefix: str = DEFAULT_QUEUE_PREFIX
    #: One existing queue every scenario uses, for endpoints that cannot create queues.
    queue: str | None = None
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE
    timeout: float = DEFAULT_TIMEOUT
    #: A bearer token sent to every endpoint (bridge.client), for bridges that ask for one.
    #: Reports say only whether one was sent.
    token: str | None = field(default=None, repr=False)
