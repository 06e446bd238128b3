"""What the gRPC services share: the observing interceptor (recording and fault
injection), the health service and the JSON-over-gRPC admin service.

    server = await build_grpc_server("catalog", "demo.catalog.v1.Catalog", register, faults=None)
    server.add_insecure_port("127.0.0.1:7004")

The admin service has no .proto: ``/switchyard.admin.Admin/Requests``, ``/Reset`` and
``/SetFaults`` take and return raw bytes holding JSON (see ``services.admin``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
import grpc.aio
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from services.faults import INJECTED_FAILURE_MESSAGE, FaultConfig, FaultInjector
from services.recording import RequestRecorder, merge_headers

ADMIN_SERVICE = "switchyard.admin.Admin"
MAX_BATCH_IDS = 500
# grpc enables SO_REUSEPORT by default, which would let a second server silently share a port.
SERVER_OPTIONS = (("grpc.so_reuseport", 0),)
DEFAULT_SHUTDOWN_GRACE_S = 0.5

if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # the runtime class is not generic, only its stub
    _Interceptor = grpc.aio.ServerInterceptor

Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def describe_request(message: Any) -> str:
    """A short text form of a request: its set fields as ``name=value`` joined by ``&``."""
    parts = []
    for field, value in message.ListFields():
        text = ",".join(str(v) for v in value) if field.is_repeated else str(value)
        parts.append(f"{field.name}={text}")
    return "&".join(parts)


class ObservingInterceptor(_Interceptor):
    """Records every call of the service's own methods and applies the injected faults."""

    def __init__(self, full_service_name: str, recorder: RequestRecorder, faults: FaultInjector):
        self.prefix = f"/{full_service_name}/"
        self.recorder = recorder
        self.faults = faults

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith(self.prefix):
            return handler
        inner = cast(Handler, handler.unary_unary)
        call = method.removeprefix(self.prefix)

        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.time()
            try:
                if await self.faults.apply():
                    await context.abort(grpc.StatusCode.UNAVAILABLE, INJECTED_FAILURE_MESSAGE)
                return await inner(request, context)
            finally:
                metadata = context.invocation_metadata() or ()
                headers = merge_headers(
                    (key, value) for key, value in metadata if isinstance(value, str)
                )
                self.recorder.record(call, describe_request(request), start, time.time(), headers)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def admin_handler(
    recorder: RequestRecorder, faults: FaultInjector
) -> grpc.GenericRpcHandler[Any, Any]:
    """The generic JSON-over-gRPC admin service (requests and responses are raw bytes)."""

    async def requests(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return orjson.dumps({"requests": [r.to_json() for r in recorder.records()]})

    async def reset(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        recorder.clear()
        return orjson.dumps({"requests": []})

    async def set_faults(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        try:
            faults.configure(FaultConfig.from_json(orjson.loads(request or b"{}")))
        except (ValueError, TypeError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return orjson.dumps(faults.config.to_json())

    return grpc.method_handlers_generic_handler(
        ADMIN_SERVICE,
        {
            "Requests": grpc.unary_unary_rpc_method_handler(requests),
            "Reset": grpc.unary_unary_rpc_method_handler(reset),
            "SetFaults": grpc.unary_unary_rpc_method_handler(set_faults),
        },
    )


async def build_grpc_server(
    service: str,
    full_service_name: str,
    register: Callable[[grpc.aio.Server], None],
    *,
    faults: FaultConfig | None = None,
) -> grpc.aio.Server:
    """A grpc.aio server with the service (added by ``register``), health and admin.

    Call it inside a running event loop; bind a port and ``start()`` it afterwards.
    """
    recorder = RequestRecorder(service)
    injector = FaultInjector(faults)
    server = grpc.aio.server(
        interceptors=[ObservingInterceptor(full_service_name, recorder, injector)],
        options=SERVER_OPTIONS,
    )
    register(server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", full_service_name):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.add_generic_rpc_handlers((admin_handler(recorder, injector),))
    return server


async def check_batch_size(ids: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    if len(ids) > MAX_BATCH_IDS:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"at most {MAX_BATCH_IDS} ids per batch, got {len(ids)}",
        )
