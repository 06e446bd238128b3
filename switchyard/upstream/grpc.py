"""gRPC upstreams over one ``grpc.aio`` channel per instance, with a real deadline on every call.

Deadlines are passed per call (``timeout=``) rather than through service
config, whose timeouts misbehave below 2 s in grpcio 1.85.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.upstream.call import CallScope, GrpcRequest, UpstreamRequest
from switchyard.upstream.errors import (
    UpstreamError,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.upstream.settings import TlsSettings, UpstreamSettings
from switchyard.upstream.transport import Transport, call_timeout

_ERRORS_BY_STATUS: dict[grpc.StatusCode, type[UpstreamError]] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: UpstreamTimeout,
    grpc.StatusCode.NOT_FOUND: UpstreamNotFound,
    grpc.StatusCode.INVALID_ARGUMENT: UpstreamRejected,
    grpc.StatusCode.OUT_OF_RANGE: UpstreamRejected,
    grpc.StatusCode.UNAVAILABLE: UpstreamUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: UpstreamUnavailable,
    grpc.StatusCode.INTERNAL: UpstreamUnavailable,
    grpc.StatusCode.UNKNOWN: UpstreamUnavailable,
    grpc.StatusCode.ABORTED: UpstreamUnavailable,
    grpc.StatusCode.CANCELLED: UpstreamUnavailable,
}

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # Reconnect quickly once a restarted instance is back.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]


class GrpcTransport(Transport):
    """Unary calls against one instance (``host:port``) of a gRPC upstream."""

    def __init__(
        self,
        name: str,
        target: str,
        *,
        timeout: float,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Mapping[str, str] | None = None,
        min_call_time: float = 0.0,
    ) -> None:
        self.name = name
        self.target = target
        self._timeout = timeout
        self._min_call_time = min_call_time
        self._channel = (
            grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
            if credentials is None
            else grpc.aio.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
        )
        self._metadata = dict(metadata or {})
        self._methods: dict[str, grpc.aio.UnaryUnaryMultiCallable[Any, Any]] = {}

    @classmethod
    def for_instance(cls, name: str, address: str, settings: UpstreamSettings) -> GrpcTransport:
        """The transport of one instance, over TLS when ``settings.tls`` says so."""
        return cls(
            name,
            address,
            timeout=settings.timeout,
            credentials=None if settings.tls is None else channel_credentials(settings.tls),
            metadata=settings.static_headers(),
            min_call_time=settings.min_call_time,
        )

    def _method(self, request: GrpcRequest) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        method = self._methods.get(request.method)
        if method is None:
            method = self._channel.unary_unary(
                request.method,
                request_serializer=type(request.message).SerializeToString,
                response_deserializer=request.response_type.FromString,
            )
            self._methods[request.method] = method
        return method

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        if not isinstance(request, GrpcRequest):
            raise TypeError(f"{self.name} is a gRPC upstream, got {type(request).__name__}")
        operation = request.operation
        timeout = call_timeout(self._timeout, scope, self.name, operation, self._min_call_time)
        metadata = tuple({**self._metadata, **scope.headers, **request.metadata}.items())
        try:
            return await self._method(request)(request.message, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            error_type = _ERRORS_BY_STATUS.get(code, UpstreamProtocolError)
            raise error_type(
                self.name,
                operation,
                f"{code.name} from {self.target}: {exc.details()}",
                retryable=code == grpc.StatusCode.UNAVAILABLE,
                retry_after=_pushback(exc),
            ) from exc

    async def check(self, timeout: float) -> bool:
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def aclose(self) -> None:
        await self._channel.close(grace=None)


def _pushback(exc: grpc.aio.AioRpcError) -> float | None:
    """The server's ``grpc-retry-pushback-ms`` (gRPC's Retry-After), in seconds."""
    # grpc.aio gives a Metadata (pairs when iterated); the stubs say otherwise.
    trailing = cast("Iterable[tuple[str, object]]", exc.trailing_metadata() or ())
    for key, value in trailing:
        if key == "grpc-retry-pushback-ms" and isinstance(value, str) and value.isdigit():
            return int(value) / 1000
    return None


def channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials:
    """TLS credentials: the CA bundle (else the system's roots) and an optional client cert."""

    def read(path: Path | None) -> bytes | None:
        return None if path is None else path.read_bytes()

    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.ca_file),
        private_key=read(tls.key_file),
        certificate_chain=read(tls.cert_file),
    )
