"""The generic upstream layer: one ``Upstream.call`` interface over any transport.

Nothing here knows of GraphQL; a graph's service clients are built on it::

    Upstream (name, settings, observer hook)
    └── its stack (``stack``): coalesce → cache → retry → bulkhead → balance → breaker
        └── Transport.handle(request, scope)      one per instance
        ├── RestTransport    JSON over HTTP (httpx over aiohttp), any method, JSON or form bodies
        ├── HttpTransport    the HTTP base a graph subclasses for other formats
        └── GrpcTransport    unary calls over grpc.aio, TLS, per-call metadata

Failures of any wire are raised as ``UpstreamError`` subclasses (``errors``).
"""

from switchyard.upstream.balancing import RoundRobin
from switchyard.upstream.call import (
    IDENTITY_HEADERS,
    CallObserver,
    CallScope,
    ForwardedIdentity,
    GrpcRequest,
    RestRequest,
    UpstreamRequest,
)
from switchyard.upstream.errors import (
    UpstreamError,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRefused,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.upstream.grpc import GrpcTransport
from switchyard.upstream.kinds import BUILTIN_KINDS, TransportFactory, kinds_with
from switchyard.upstream.rest import HttpTransport, RestTransport
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.transport import Transport
from switchyard.upstream.upstream import Upstream, Upstreams

__all__ = [
    "BUILTIN_KINDS",
    "IDENTITY_HEADERS",
    "CallObserver",
    "CallScope",
    "ForwardedIdentity",
    "GrpcRequest",
    "GrpcTransport",
    "HttpTransport",
    "RestRequest",
    "RestTransport",
    "RoundRobin",
    "Transport",
    "TransportFactory",
    "Upstream",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamProtocolError",
    "UpstreamRefused",
    "UpstreamRejected",
    "UpstreamRequest",
    "UpstreamSettings",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "Upstreams",
    "kinds_with",
]
