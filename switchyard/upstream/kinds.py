"""Upstream kinds: the table from a config's ``kind = "..."`` to the transport of one instance.

``rest`` (JSON over HTTP) and ``grpc`` are built in; a graph adds its own
through ``Graph(kinds={...})``, for example XML over HTTP::

    class XmlTransport(HttpTransport):
        accept = "application/xml"
        def decode(self, operation, response): ...

    SHIPPING = Service("shipping", kinds={"xml": XmlTransport.for_instance})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from switchyard.upstream.grpc import GrpcTransport
from switchyard.upstream.rest import RestTransport
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.transport import Transport

TransportFactory = Callable[[str, str, UpstreamSettings], Transport]
"""``(upstream name, instance address, settings) -> Transport`` for one instance."""

BUILTIN_KINDS: Mapping[str, TransportFactory] = {
    "rest": RestTransport.for_instance,
    "grpc": GrpcTransport.for_instance,
}


def kinds_with(added: Mapping[str, TransportFactory]) -> dict[str, TransportFactory]:
    """The built-in kinds plus ``added``; a graph cannot redefine a built-in kind."""
    clash = sorted(set(added) & set(BUILTIN_KINDS))
    if clash:
        raise ValueError(f"upstream kind {clash[0]!r} is built in and cannot be redefined")
    return {**BUILTIN_KINDS, **added}
