"""``Service``: how a graph names an upstream it calls (and brings its kind, when it is new).

    ACCOUNTS = Service("accounts")                       # kind chosen by the config
    SHIPPING = Service("shipping", kinds={"xml": XmlTransport.for_instance})

Edges and resolvers name the service; the runtime finds the opened
``Upstream`` of that name (``RequestContext.upstream(ACCOUNTS)``), and the
graph requires an ``[upstreams.NAME]`` table for every service it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from switchyard.upstream.kinds import TransportFactory


@dataclass(frozen=True)
class Service:
    name: str
    kinds: Mapping[str, TransportFactory] = field(default_factory=dict, compare=False, hash=False)
    """Upstream kinds this service's client adds (``kind = "xml"`` in its config table)."""
