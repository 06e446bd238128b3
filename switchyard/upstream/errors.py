"""The one error hierarchy every upstream call raises, whatever the wire.

httpx and grpc exceptions are translated here, at the boundary, so callers
never see a transport's own exception types::

    UpstreamError
    ├── UpstreamUnavailable      connection refused or reset, 5xx, gRPC UNAVAILABLE
    ├── UpstreamTimeout          the call's deadline passed, gRPC DEADLINE_EXCEEDED
    ├── UpstreamNotFound         404, gRPC NOT_FOUND
    ├── UpstreamRejected         400/422, gRPC INVALID_ARGUMENT: the service refused the input
    └── UpstreamProtocolError    an answer that is not what the contract says

The message of an ``UpstreamError`` is for logs: it names the upstream and may
name its address. What a client sees is decided by the GraphQL layer.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """A call to an upstream failed."""

    def __init__(self, upstream: str, operation: str, detail: str) -> None:
        super().__init__(f"{upstream} {operation}: {detail}")
        self.upstream = upstream
        self.operation = operation
        self.detail = detail


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached or answered with a server error."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer before the call's deadline."""


class UpstreamNotFound(UpstreamError):
    """The upstream says the requested resource does not exist."""


class UpstreamRejected(UpstreamError):
    """The upstream refused the request's parameters."""


class UpstreamProtocolError(UpstreamError):
    """The upstream answered something the contract does not allow."""
