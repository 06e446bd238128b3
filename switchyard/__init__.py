"""Switchyard: a GraphQL gateway whose graph is a plug-in.

What a graph imports from the runtime::

    import strawberry
    from switchyard import Graph

    @strawberry.type
    class Query:
        hello: str = "world"

    graph = Graph(schema=strawberry.Schema(query=Query))

then ``switchyard serve --graph mymodule:graph``. A graph over services adds
their clients (on ``switchyard.upstream``), declared edges
(``BatchEdge``/``PagedEdge``), connections, field rules and cost annotations.
"""

from importlib.metadata import PackageNotFoundError, version

from switchyard.authorization import authenticated, owner_or_admin, requires_scopes
from switchyard.cache_control import PRIVATE, PUBLIC, CacheControlScope, cache_control
from switchyard.caller import ANONYMOUS, Caller
from switchyard.connections import (
    CONNECTION_SIZE,
    EMPTY_CONNECTION,
    Connection,
    ConnectionRecord,
    Edge,
    PageInfo,
    page_request,
)
from switchyard.context import RequestContext
from switchyard.cost import cost, list_size
from switchyard.edges import BatchEdge, PagedEdge, check_cursor, decimal_id
from switchyard.errors import (
    BadUserInput,
    ErrorCode,
    Forbidden,
    GraphError,
    Unauthenticated,
)
from switchyard.graph import Graph, GraphLoadError, load_graph
from switchyard.service import Service

try:
    __version__ = version("switchyard")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ANONYMOUS",
    "CONNECTION_SIZE",
    "EMPTY_CONNECTION",
    "PRIVATE",
    "PUBLIC",
    "BadUserInput",
    "BatchEdge",
    "CacheControlScope",
    "Caller",
    "Connection",
    "ConnectionRecord",
    "Edge",
    "ErrorCode",
    "Forbidden",
    "Graph",
    "GraphError",
    "GraphLoadError",
    "PageInfo",
    "PagedEdge",
    "RequestContext",
    "Service",
    "Unauthenticated",
    "__version__",
    "authenticated",
    "cache_control",
    "check_cursor",
    "cost",
    "decimal_id",
    "list_size",
    "load_graph",
    "owner_or_admin",
    "page_request",
    "requires_scopes",
]
