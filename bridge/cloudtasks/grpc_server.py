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
from google.protobuf.message import DecodeError

from backends.errors import InvalidArgument
from bridge.cloudtasks import grpc_limits
from bridge.cloudtasks.convert import code_of
from bridge.cloudtasks.methods import METHODS, SERVICE, Front, Method, invoke
from bridge.errors import as_api_error
from bridge.gate import record
from bridge.gate.backend import deadline
from bridge.ops import logs
from bridge.settings import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_BODY_BYTES

log = logging.getLogger("bridge.cloudtasks")
#: Calls served at once by one process's gRPC server.
DEFAULT_THREADS = 8
#: The largest request taken, as the HTTP side's body limit (a 1 MiB payload and the rest).
DEFAULT_MAX_REQUEST_BYTES = DEFAULT_MAX_BODY_BYTES


class _Undecodable:
    """What the deserializer hands over for bytes that are not the method's message."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _deserializer(message: Any) -> Callable[[bytes], Any]:
    """Parse a request; bytes that are not a valid message become `_Undecodable`, so that
    the call answers INVALID_ARGUMENT instead of gRPC's INTERNAL and a logged traceback."""

    def parse(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except DecodeError as exc:
            return _Undecodable(str(exc) or "cannot be decoded")

    return parse


def _serving(front: Front, method: Method, log_calls: bool) -> Callable[[Any, grpc.ServicerContext], Any]:
    """The handler of one RPC: the gate's steps around `invoke`, as the HTTP pipeline's
    (`bridge.gate.http`) around a view: the request id (``x-request-id`` metadata, echoed
    in the trailing metadata), the caller's deadline (a call whose deadline has passed
    reaches no backend), the one error mapping, one log line and the counts."""
    name = f"{SERVICE}/{method.name}"

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        authorization = offered = None
        for key, value in context.invocation_metadata():
            if key == "authorization":
                authorization = str(value)
            elif key == "x-request-id":
                offered = str(value)
        ident = logs.call_id(offered)
        context.set_trailing_metadata(((logs.REQUEST_ID_HEADER.lower(), ident),))
        reason = None
        try:
            if isinstance(request, _Undecodable):
                raise InvalidArgument(f"The request is not a valid {method.request.DESCRIPTOR.name}: {request.problem}")
            with deadline(context.time_remaining()):
                return invoke(front, method, request, authorization)
        except Exception as exc:  # noqa: BLE001 - the gate's one mapping, rendered as a status
            error = as_api_error(exc)
            code, reason = code_of(error), error.reason
            context.abort(code, error.message)
        finally:
            if log_calls:
                details = {"transport": "grpc"} if reason is None else {"transport": "grpc", "reason": reason}
                record.finish(ident, name, code.name, started, details)

    return serve


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
        without its request (`grpc_limits`). ``log_calls``: one JSON log line per call,
        and its counts (`bridge.gate.record`).

        Raises RuntimeError when the port cannot be bound.
        """
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                _serving(front, method, log_calls),
                request_deserializer=_deserializer(method.request),
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
