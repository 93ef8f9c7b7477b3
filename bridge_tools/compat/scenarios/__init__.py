"""The battery: every scenario, registered by name.

A scenario is a function of one `Session`: it calls the API through the session, and
each call records an observation with the response the scenario expects. The same
function runs on every endpoint, each time on a fresh queue (or the pinned one) and
with its own task names, so that runs never meet each other's tombstones.
"""

from __future__ import annotations

from bridge_tools.compat.scenarios import leases, queues, tasks
from bridge_tools.compat.scenarios.base import SCENARIOS as _REGISTERED
from bridge_tools.compat.scenarios.base import Scenario

#: The order they run in: single tasks, then leases, then queue-wide behaviour.
_MODULES = (tasks, leases, queues)
SCENARIOS: dict[str, Scenario] = {
    name: found for module in _MODULES for name, found in _REGISTERED.items() if found.run.__module__ == module.__name__
}

__all__ = ["SCENARIOS", "Scenario"]
