"""The gRPC transport of the Cloud Tasks v2beta2 front: ``google.cloud.tasks.v2beta2.CloudTasks``.

Reached by the official client without credentials::

    CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel("HOST:G")))

Credentials, when the bridge asks for them (``--auth token`` or ``google``), travel as
``authorization: Bearer <token>`` metadata, checked by the same authenticator as the
v1 front's Authorization header.

Several gunicorn workers: each worker runs its own gRPC server on the same port, bound
with SO_REUSEPORT (gRPC's default on Linux), started once the worker has built its app
(`bridge.server.serving`). The kernel spreads connections over the workers as it spreads the
HTTP ones, every worker serves both fronts from its one backend, and nothing is shared
between processes but the backend (Redis), as on the HTTP side.

What one connection or call may hold, and for how long, is bounded as on the HTTP side
(`bridge.cloudtasks.grpc_limits`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from backends.errors import ApiError
from bridge import entropy
from bridge.cloudtasks import grpc_limits
from bridge.cloudtasks.convert import code_of
from bridge.cloudtasks.methods import METHODS, SERVICE, Front, Method, invoke
from bridge.ops import logs
from bridge.settings import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_BODY_BYTES

log = logging.getLogger("bridge.cloudtasks")
#: Calls served at once by one process's gRPC server.
DEFAULT_THREADS = 8
#: The largest request taken, as the HTTP side's body limit (a 1 MiB payload and the rest).
DEFAULT_MAX_REQUEST_BYTES = DEFAULT_MAX_BODY_BYTES


def _serving(front: Front, method: Method, log_calls: bool) -> Callable[[Any, grpc.ServicerContext], Any]:
    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        authorization = None
        for key, value in context.invocation_metadata():
            if key == "authorization":
                authorization = str(value)
        try:
            return invoke(front, method, request, authorization)
        except ApiError as exc:
            code = code_of(exc)
            if code is grpc.StatusCode.INTERNAL or code is grpc.StatusCode.UNAVAILABLE:
                log.warning("%s: %s: %s", method.name, type(exc).__name__, exc.message, exc_info=exc.__cause__)
            context.abort(code, exc.message)
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unexpected error in %s", method.name)
            context.abort(code, "Internal error")
        finally:
            if log_calls:
                _log_call(method.name, code, started)

    return serve


def _log_call(name: str, code: grpc.StatusCode, started: float) -> None:
    """One line per call, as the HTTP side logs one per request (`bridge.ops.logs`)."""
    if logs.log.isEnabledFor(logging.INFO):
        fields = {
            "request_id": entropy.token_hex(16),
            "method": f"{SERVICE}/{name}",
            "status": code.name,
            "duration_ms": logs.duration_ms(started),
            "transport": "grpc",
        }
        extra = {logs.FIELDS: fields}
        logs.log.handle(logs.log.makeRecord(logs.log.name, logging.INFO, __name__, 0, "request", (), None, extra=extra))


class GrpcFront:
    """A running gRPC server of the front, with the thread pool it owns."""

    def __init__(
        self,
        front: Front,
        address: str,
        *,
        threads: int = DEFAULT_THREADS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        head_timeout: float = DEFAULT_HEAD_TIMEOUT,
        log_calls: bool = True,
    ) -> None:
        """Serve ``front`` on ``address`` (``host:port``, port 0 for any free one); larger
        requests are refused by gRPC (RESOURCE_EXHAUSTED) before they reach a handler.
        ``head_timeout``: seconds a connection may stay without a call, and a call
        without its request (`grpc_limits`). ``log_calls``: one JSON log line per call
        (`bridge.ops.logs`).

        Raises RuntimeError when the port cannot be bound.
        """
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                _serving(front, method, log_calls),
                request_deserializer=method.request.FromString,
                response_serializer=method.response.SerializeToString,
            )
            for name, method in METHODS.items()
        }
        self._guard = grpc_limits.CallGuard(head_timeout)
        guarded = {name: self._guard.handler(handler) for name, handler in handlers.items()}
        self._executor = grpc_limits.TimedExecutor(max_workers=threads, thread_name_prefix="cloudtasks-grpc")
        self._server = grpc.server(
            self._executor,
            options=grpc_limits.server_options(max_request_bytes, head_timeout),
            maximum_concurrent_rpcs=grpc_limits.MAX_CALLS,
        )
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, guarded),))
        try:
            self.port: int = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            self._executor.shutdown(wait=False)
            self._guard.stop()
            raise RuntimeError(f"cannot serve gRPC on {address}: {exc}") from None
        self._server.start()

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls; calls in flight get ``grace`` seconds."""
        self._server.stop(grace).wait()
        # gRPC leaves its thread pool to whoever made it.
        self._executor.shutdown(wait=True)
        self._guard.stop()
