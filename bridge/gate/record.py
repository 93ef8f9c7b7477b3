"""What every call leaves behind, whatever its way in: one log line and its counts.

The HTTP pipeline (`bridge.gate.http`) and the gRPC handler wrapper
(`bridge.cloudtasks.grpc_server`) both end a call here, so a call is logged
(`bridge.ops.logs`) and counted (`bridge.ops.metrics`) alike on every transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.ops import logs, metrics


def finish(ident: str, method: str, status: int | str, started: float, details: Mapping[str, Any]) -> None:
    """Log and count one answered call: ``status`` is the HTTP status or the gRPC code's
    name, ``started`` its perf_counter() at arrival, ``details`` the log line's other fields."""
    logs.write_line(ident, method, status, started, details)
    metrics.count_request(method, status, started)
