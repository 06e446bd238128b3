"""Declared edges to other services: batching, per-request caching and fields follow from one line.

A graph declares each edge once, module-level, with the call that answers a
batch of keys and how answers map to records::

    shipments = BatchEdge(
        "Order.shipment",
        service=SHIPPING,
        fetch=shipping.shipments_of_orders,   # (upstream, order_ids, scope) -> {order_id: record}
        max_batch=500,
    )

    @strawberry.type
    class Order:
        shipment: Shipment | None = shipments.field(key=lambda order: order.id)

Within one request, every ``Order.shipment`` asked for in the same tick
becomes one call per ``max_batch`` keys, and a key asked twice is answered from
the request's cache. Loaders live on the request context (``LoaderCache``) and
are made on first use inside the running event loop, so no request ever sees
another's data. Calls go through ``Upstream.call``, so the debug record and
deadlines apply without anything more.

``PagedEdge`` does the same for a connection per parent (``Product.reviews``):
one call per distinct page size for all parents, a call of its own for a page
with ``after``; its ``connection_field`` adds the ``first``/``after``
arguments and ``@listSize``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import strawberry
from aiodataloader import DataLoader

from switchyard.connections import (
    CONNECTION_SIZE,
    EMPTY_CONNECTION,
    MAX_PAGE_SIZE,
    ConnectionRecord,
    page_request,
)
from switchyard.service import Service
from switchyard.upstream.call import CallScope
from switchyard.upstream.upstream import Upstream

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = TypeVar("P")

DEFAULT_MAX_BATCH = 500
"""Keys per upstream call unless an edge says otherwise."""

ANY_PAGE_SIZE = 1
"""The page size asked for when only page-level facts (an average) are wanted."""


class EdgeContext(Protocol):
    """What edges read from ``info.context`` (the gateway's ``RequestContext`` has it)."""

    @property
    def scope(self) -> CallScope: ...

    @property
    def loaders(self) -> LoaderCache: ...


class LoaderCache:
    """The dataloaders of one request, one per edge, each made on first use."""

    def __init__(self, upstreams: Mapping[str, Upstream], scope: CallScope) -> None:
        self.upstreams = upstreams
        self.scope = scope
        self._loaders: dict[object, DataLoader] = {}

    def loader(self, edge: _Edge) -> DataLoader:
        loader = self._loaders.get(edge)
        if loader is None:
            loader = self._loaders[edge] = DataLoader(
                edge.batch_function(upstream_of(self.upstreams, edge.service), self.scope),
                max_batch_size=edge.max_batch,
            )
        return loader


def upstream_of(upstreams: Mapping[str, Upstream], service: Service) -> Upstream:
    """The opened upstream of ``service``; a graph that never named it is told how to."""
    try:
        return upstreams[service.name]
    except KeyError:
        raise LookupError(
            f"service {service.name!r} is called but the graph does not name it: "
            "add it to Graph(services=[...]) or reach it through a declared edge"
        ) from None


class _Edge:
    name: str
    service: Service
    max_batch: int

    def batch_function(
        self, upstream: Upstream, scope: CallScope
    ) -> Callable[[list[Any]], Awaitable[list[Any]]]:
        raise NotImplementedError

    def _mark(self, resolver: Callable[..., Any]) -> Callable[..., Any]:
        # How Graph finds the services its fields call (switchyard.graph.edges_of).
        resolver.__switchyard_edge__ = self  # type: ignore[attr-defined]
        return resolver

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BatchEdge(_Edge, Generic[K, V]):
    """Records by key from another service, batched: ``fetch(upstream, keys, scope)`` answers
    ``{key: answer}`` (absent keys are null, not errors) and ``convert`` makes the record."""

    def __init__(
        self,
        name: str,
        *,
        service: Service,
        fetch: Callable[[Upstream, list[K], CallScope], Awaitable[Mapping[K, Any]]],
        convert: Callable[[Any], V] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.name = name
        self.service = service
        self.fetch = fetch
        self.convert = convert
        self.max_batch = max_batch

    def batch_function(
        self, upstream: Upstream, scope: CallScope
    ) -> Callable[[list[K]], Awaitable[list[V | None]]]:
        async def load(keys: list[K]) -> list[V | None]:
            found = await self.fetch(upstream, list(dict.fromkeys(keys)), scope)
            convert = self.convert
            if convert is None:
                return [found.get(key) for key in keys]
            return [convert(found[key]) if key in found else None for key in keys]

        return load

    async def load(self, context: EdgeContext, key: K) -> V | None:
        """The record for ``key`` (None when the service does not know it)."""
        value: V | None = await context.loaders.loader(self).load(key)
        return value

    def prime(self, context: EdgeContext, key: K, value: V) -> None:
        """Remember a record this request already has (from a list), so no call fetches it."""
        context.loaders.loader(self).prime(key, value)

    def field(
        self, *, key: Callable[[Any], K | None], description: str | None = None, **options: Any
    ) -> Any:
        """A Strawberry field answering ``load(key(parent))``; annotate its type on the class."""
        edge = self

        async def resolve(root: Any, info: strawberry.Info) -> Any:
            parent_key = key(root)
            return None if parent_key is None else await edge.load(info.context, parent_key)

        return strawberry.field(resolver=self._mark(resolve), description=description, **options)

    def lookup_field(self, *, description: str | None = None, **options: Any) -> Any:
        """A root field ``(id: ID!)`` answering ``load(id)``: ``user(id: "1")``."""
        edge = self

        async def resolve(info: strawberry.Info, id: strawberry.ID) -> Any:
            return await edge.load(info.context, id)  # type: ignore[arg-type]

        return strawberry.field(resolver=self._mark(resolve), description=description, **options)


class PageKey(NamedTuple):
    """One page of a per-parent list; ``first=None`` asks for any page (for page-level facts)."""

    parent_id: str
    first: int | None
    after: str | None


PageFetch = Callable[
    [Upstream, list[str], int, "str | None", CallScope], Awaitable[Mapping[str, Any]]
]
"""``fetch(upstream, parent_ids, first, after, scope) -> {parent_id: page}``."""


class PagedEdge(_Edge, Generic[P]):
    """A page of a list per parent from another service (``Product.reviews``).

    ``convert`` turns one parent's answer (or None when the service omitted
    it) into the record; ``connection_of`` finds the ``ConnectionRecord`` in it.
    """

    def __init__(
        self,
        name: str,
        *,
        service: Service,
        fetch: PageFetch,
        convert: Callable[[Any | None], P],
        connection_of: Callable[[P], ConnectionRecord] = lambda record: record,  # type: ignore[assignment,return-value]
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.name = name
        self.service = service
        self.fetch = fetch
        self.convert = convert
        self.connection_of = connection_of
        self.max_batch = max_batch

    def batch_function(
        self, upstream: Upstream, scope: CallScope
    ) -> Callable[[list[PageKey]], Awaitable[list[P]]]:
        async def load(keys: list[PageKey]) -> list[P]:
            def fetch(
                ids: list[str], first: int, after: str | None
            ) -> Awaitable[Mapping[str, Any]]:
                return self.fetch(upstream, ids, first, after, scope)

            pages = await load_pages(keys, fetch)
            return [self.convert(pages[key]) for key in keys]

        return load

    async def load(
        self, context: EdgeContext, parent_id: str, first: int | None, after: str | None
    ) -> P:
        record: P = await context.loaders.loader(self).load(PageKey(parent_id, first, after))
        return record

    async def load_any_page(self, context: EdgeContext, parent_id: str) -> P:
        """A page of any size, for facts about the whole list; it joins another page's call."""
        return await self.load(context, parent_id, None, None)

    def page_field(
        self, *, parent_id: Callable[[Any], str], read: Callable[[P], Any], **options: Any
    ) -> Any:
        """A field answering a fact of the parent's page (``Product.averageRating``)."""
        edge = self

        async def resolve(root: Any, info: strawberry.Info) -> Any:
            return read(await edge.load_any_page(info.context, parent_id(root)))

        return strawberry.field(resolver=self._mark(resolve), **options)

    def connection_field(
        self,
        *,
        parent_id: Callable[[Any], str],
        default_first: int,
        max_first: int = MAX_PAGE_SIZE,
        description: str | None = None,
        directives: Sequence[object] = (),
        **options: Any,
    ) -> Any:
        """A connection with ``first``/``after`` and ``@listSize``; ``first: 0`` calls nothing."""
        edge = self

        async def resolve(
            root: Any,
            info: strawberry.Info,
            first: int | None = default_first,
            after: str | None = strawberry.UNSET,
        ) -> Any:
            request = page_request(first, after, max_first)
            if request is None:
                return EMPTY_CONNECTION
            record = await edge.load(info.context, parent_id(root), request.first, request.after)
            return edge.connection_of(record)

        return strawberry.field(
            resolver=self._mark(resolve),
            description=description,
            directives=[CONNECTION_SIZE, *directives],
            **options,
        )


async def load_pages(
    keys: Sequence[PageKey],
    fetch: Callable[[list[str], int, str | None], Awaitable[Mapping[str, Any]]],
) -> dict[PageKey, Any | None]:
    """Answer page keys with as few calls as the contract allows.

    Keys without ``after`` share one call per distinct ``first``; a key with
    ``after`` needs a call of its own. ``first=None`` keys join the largest page.
    """
    shared_first = max(
        (k.first for k in keys if k.after is None and k.first is not None), default=ANY_PAGE_SIZE
    )

    def call_for(key: PageKey) -> tuple[int, str | None, str | None]:
        first = key.first if key.first is not None else shared_first
        return first, key.after, key.parent_id if key.after is not None else None

    ids_by_call: dict[tuple[int, str | None, str | None], dict[str, None]] = defaultdict(dict)
    for key in keys:
        ids_by_call[call_for(key)][key.parent_id] = None
    calls = list(ids_by_call)
    answers = await asyncio.gather(
        *(fetch(list(ids_by_call[call]), call[0], call[1]) for call in calls)
    )
    pages_by_call = dict(zip(calls, answers, strict=True))
    return {key: pages_by_call[call_for(key)].get(key.parent_id) for key in keys}
