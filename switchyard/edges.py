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
arguments and ``@listSize``, and prices that call of its own with
``after: String @cost(weight: "1")``: one point per parent, whose pages can
then not be batched. A call that fails fails only the keys it was asked for.

Keys that reach a service are checked first. ``parse_key`` (a callable of the
graph: ``decimal_id`` for services whose ids are decimal integers) turns an
id as given into the key sent, or raises ``BadUserInput``: an ``ID`` argument
that does not parse is ``BAD_USER_INPUT`` at its field and is never sent; a
parent's reference that does not parse can name nothing, so its field is
null (its page empty) without a call. Cursors given as ``after`` are checked
too (``check_cursor``: printable ASCII, at most ``MAX_CURSOR_LENGTH``), so
no argument can make a call's URL too long.

Every call goes through ``Upstream.call`` and is counted on the request's
``WorkMeter``; the loaders add the items of every page received (records
asked for by key are not items: each is the object of its own field).
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Annotated, Any, Generic, NamedTuple, Protocol, TypeVar

import strawberry
from aiodataloader import DataLoader

from switchyard.connections import (
    CONNECTION_SIZE,
    EMPTY_CONNECTION,
    MAX_PAGE_SIZE,
    ConnectionRecord,
    page_request,
)
from switchyard.cost.annotations import cost
from switchyard.errors import BadUserInput
from switchyard.service import Service
from switchyard.telemetry.record import BATCH
from switchyard.upstream.call import CallScope
from switchyard.upstream.upstream import Upstream

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = TypeVar("P")

DEFAULT_MAX_BATCH = 500
"""Keys per upstream call unless an edge says otherwise."""

ANY_PAGE_SIZE = 1
"""The page size asked for when only page-level facts (an average) are wanted."""

PER_PARENT_CALL_WEIGHT = 1
"""Points of a call made for one parent alone: what ``after`` on a per-parent connection adds."""

MAX_CURSOR_LENGTH = 256
"""The longest ``after`` cursor sent to a service; services issue far shorter ones."""

MAX_DECIMAL_ID_DIGITS = 19
"""Digits of the largest decimal id ``decimal_id`` accepts (a signed 64-bit integer's)."""

_CURSOR = re.compile(rf"[\x21-\x7e]{{1,{MAX_CURSOR_LENGTH}}}")
_DECIMAL_ID = re.compile(rf"[0-9]{{1,{MAX_DECIMAL_ID_DIGITS}}}")

KeyParser = Callable[[Any], Any]
"""Turns an id as given into the key sent to a service, or raises ``BadUserInput``
(a ``ValueError`` is taken as one): ``BatchEdge(..., parse_key=decimal_id)``."""

_After = Annotated[
    str | None,
    strawberry.argument(directives=[cost(PER_PARENT_CALL_WEIGHT)]),
]
"""``after: String @cost(weight: "1")``: a page after a cursor is one call per parent."""


def decimal_id(value: Any) -> str:
    """A decimal integer id (``"42"``), the key services of such ids are sent.

    >>> decimal_id("42")
    '42'
    >>> decimal_id("1,2,3")
    Traceback (most recent call last):
    ...
    switchyard.errors.BadUserInput: Invalid ID: an ID here is a decimal integer.
    """
    # The same test as _DECIMAL_ID, without a regex call: it runs for every key of a batch.
    if (
        type(value) is str
        and value.isdigit()
        and value.isascii()
        and 0 < len(value) <= MAX_DECIMAL_ID_DIGITS
    ):
        return value
    if isinstance(value, str) and _DECIMAL_ID.fullmatch(value):
        return value
    raise BadUserInput("Invalid ID: an ID here is a decimal integer.")


def check_cursor(after: str | None) -> str | None:
    """``after`` as given if it can be a cursor (printable ASCII, at most 256 characters).

    >>> check_cursor("b2Zmc2V0OjIw")
    'b2Zmc2V0OjIw'
    >>> check_cursor("x" * 300)
    Traceback (most recent call last):
    ...
    switchyard.errors.BadUserInput: Invalid cursor: after must be a cursor this API returned.
    """
    if not after:  # None, "" or UNSET: no cursor
        return None
    if _CURSOR.fullmatch(after):
        return after
    raise BadUserInput("Invalid cursor: after must be a cursor this API returned.")


def _parse(parse_key: KeyParser | None, key: Any) -> Any:
    if parse_key is None:
        return key
    try:
        return parse_key(key)
    except (ValueError, TypeError):
        raise BadUserInput("Invalid ID.") from None


class ItemCounter(Protocol):
    """Told how many items each page a loader received held (``switchyard.cost.WorkMeter``)."""

    def received(self, items: int) -> None: ...


class EdgeContext(Protocol):
    """What edges read from ``info.context`` (the gateway's ``RequestContext`` has it)."""

    @property
    def scope(self) -> CallScope: ...

    @property
    def loaders(self) -> LoaderCache: ...


BatchResolver = Callable[[Any, Sequence[Any], Mapping[str, Any]], Awaitable[list[Any]]]
"""``resolve(context, parents, arguments)``: a field's value for every parent at once, in
order (an exception instance where a parent's value failed). The planned execution
(``switchyard.execution``) calls it once per field and level instead of once per parent."""


def batch_resolver_of(resolver: Callable[..., Any] | None) -> BatchResolver | None:
    """The batch form a declared edge gave ``resolver``, if any."""
    return getattr(resolver, "__switchyard_batch__", None)


def _shared(load: Awaitable[Any]) -> Awaitable[Any]:
    """A loader's future, awaited so that cancelling one waiter leaves it to the others.

    The loader caches one future per key; graphql-core cancels sibling fields when a
    null propagates, and a cancelled awaiter would cancel the cached future for every
    other field waiting on the same key.
    """
    return asyncio.shield(load)


async def _settled(awaitables: Sequence[Awaitable[Any]]) -> list[Any]:
    """Each awaitable's value or exception, in order; one loader tick for all of them."""
    if not awaitables:
        return []
    return list(await asyncio.gather(*awaitables, return_exceptions=True))


BatchLoad = Callable[[list[Any]], Awaitable[Sequence[Any]]]
"""A loader's batch function: a value (or an exception instance) for each key, in order."""


class Loader(DataLoader):  # type: ignore[misc]  # aiodataloader ships no types
    """A request's cache and batching for one edge: aiodataloader's ``DataLoader``.

    Keys asked in the same tick make one call per ``max_batch`` keys; answers are
    cached per key, an exception instance included; a call that fails as a whole
    caches nothing. ``load_each`` asks many keys at once and waits once per call,
    not through a gathered waiter per key (large operation: a tenth of its CPU).
    """

    def __init__(self, fetch: BatchLoad, max_batch: int) -> None:
        super().__init__(fetch, max_batch_size=max(1, max_batch), loop=asyncio.get_running_loop())

    async def load_each(self, keys: Sequence[Any]) -> list[Any]:
        """Each key's value (None for a None key, the exception where its call failed),
        every distinct key asked once."""
        futures = {key: self.load(key) for key in keys if key is not None}
        for future in futures.values():
            # The futures of one call are settled together: one wait per call. ``wait``
            # neither raises a failed key's error nor, if this waiter is cancelled with
            # its field, cancels the cached future other fields wait on.
            if not future.done():
                await asyncio.wait((future,))
        return [None if key is None else _outcome(futures[key]) for key in keys]


def _outcome(future: asyncio.Future[Any]) -> Any:
    """A settled future's value, or its exception as a value."""
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception() or future.result()


class LoaderCache:
    """The loaders of one request, one per edge, each made on first use.

    ``work`` is told the items of every page the loaders receive.
    """

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        scope: CallScope,
        *,
        work: ItemCounter | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.scope = scope
        self.work = work
        self._loaders: dict[object, Loader] = {}

    def loader(self, edge: _Edge) -> Loader:
        loader = self._loaders.get(edge)
        if loader is None:
            upstream = upstream_of(self.upstreams, edge.service)
            loader = self._loaders[edge] = Loader(
                edge.batch_function(upstream, self.scope, work=self.work), edge.max_batch
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
        self, upstream: Upstream, scope: CallScope, *, work: ItemCounter | None = None
    ) -> Callable[[list[Any]], Awaitable[list[Any]]]:
        raise NotImplementedError

    def _mark(self, resolver: Callable[..., Any], batch: BatchResolver) -> Callable[..., Any]:
        # How Graph finds the services its fields call (switchyard.graph.edges_of), and
        # how the planned execution answers the field for all parents at once.
        resolver.__switchyard_edge__ = self  # type: ignore[attr-defined]
        resolver.__switchyard_batch__ = batch  # type: ignore[attr-defined]
        return resolver

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BatchEdge(_Edge, Generic[K, V]):
    """Records by key from another service, batched: ``fetch(upstream, keys, scope)`` answers
    ``{key: answer}`` (absent keys are null, not errors) and ``convert`` makes the record.

    ``parse_key`` checks every key before it is sent (see the module's docs).
    """

    def __init__(
        self,
        name: str,
        *,
        service: Service,
        fetch: Callable[[Upstream, list[K], CallScope], Awaitable[Mapping[K, Any]]],
        convert: Callable[[Any], V] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        parse_key: KeyParser | None = None,
    ) -> None:
        self.name = name
        self.service = service
        self.fetch = fetch
        self.convert = convert
        self.max_batch = max_batch
        self.parse_key = parse_key

    def batch_function(
        self, upstream: Upstream, scope: CallScope, *, work: ItemCounter | None = None
    ) -> Callable[[list[K]], Awaitable[list[V | None]]]:
        async def load(keys: list[K]) -> list[V | None]:
            unique = list(dict.fromkeys(keys))
            batch = BATCH.set((self.name, len(unique)))  # for metrics and the call's span
            try:
                found = await self.fetch(upstream, unique, scope)
            finally:
                BATCH.reset(batch)
            convert = self.convert
            if convert is None:
                return [found.get(key) for key in keys]
            return [convert(found[key]) if key in found else None for key in keys]

        return load

    async def load(self, context: EdgeContext, key: Any) -> V | None:
        """The record for ``key`` (None when the service does not know it).

        Raises ``BadUserInput`` for a key ``parse_key`` refuses; nothing is called.
        """
        parsed = _parse(self.parse_key, key)
        value: V | None = await _shared(context.loaders.loader(self).load(parsed))
        return value

    def prime(self, context: EdgeContext, key: Any, value: V) -> None:
        """Remember a record this request already has (from a list), so no call fetches it."""
        try:
            parsed = _parse(self.parse_key, key)
        except BadUserInput:
            return  # no lookup can ask for it
        context.loaders.loader(self).prime(parsed, value)

    def field(
        self, *, key: Callable[[Any], K | None], description: str | None = None, **options: Any
    ) -> Any:
        """A Strawberry field answering ``load(key(parent))``; annotate its type on the class.

        A parent's key that ``parse_key`` refuses names nothing: the field is null, uncalled.
        """
        edge = self

        async def resolve(root: Any, info: strawberry.Info) -> Any:
            parent_key = key(root)
            if parent_key is None:
                return None
            try:
                parsed = _parse(edge.parse_key, parent_key)
            except BadUserInput:
                return None
            return await _shared(info.context.loaders.loader(edge).load(parsed))

        async def resolve_all(
            context: EdgeContext, parents: Sequence[Any], arguments: Mapping[str, Any]
        ) -> list[Any]:
            keys: list[Any] = []
            for parent in parents:
                parent_key = key(parent)
                try:
                    keys.append(None if parent_key is None else _parse(edge.parse_key, parent_key))
                except BadUserInput:
                    keys.append(None)  # names nothing: null, uncalled
            return await context.loaders.loader(edge).load_each(keys)

        return strawberry.field(
            resolver=self._mark(resolve, resolve_all), description=description, **options
        )

    def lookup_field(self, *, description: str | None = None, **options: Any) -> Any:
        """A root field ``(id: ID!)`` answering ``load(id)``: ``user(id: "1")``.

        An ``id`` that ``parse_key`` refuses is ``BAD_USER_INPUT`` at the field, uncalled.
        """
        edge = self

        async def resolve(info: strawberry.Info, id: strawberry.ID) -> Any:
            return await edge.load(info.context, id)

        async def resolve_all(
            context: EdgeContext, parents: Sequence[Any], arguments: Mapping[str, Any]
        ) -> list[Any]:
            return await _settled([edge.load(context, arguments["id"]) for _ in parents])

        return strawberry.field(
            resolver=self._mark(resolve, resolve_all), description=description, **options
        )


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
    ``parse_key`` checks parent ids before they are sent (see the module's docs).
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
        parse_key: KeyParser | None = None,
    ) -> None:
        self.name = name
        self.service = service
        self.fetch = fetch
        self.convert = convert
        self.connection_of = connection_of
        self.max_batch = max_batch
        self.parse_key = parse_key

    def batch_function(
        self, upstream: Upstream, scope: CallScope, *, work: ItemCounter | None = None
    ) -> Callable[[list[PageKey]], Awaitable[list[P | BaseException]]]:
        async def fetch(ids: list[str], first: int, after: str | None) -> Mapping[str, P]:
            batch = BATCH.set((self.name, len(ids)))  # for metrics and the call's span
            try:
                answer = await self.fetch(upstream, ids, first, after, scope)
            finally:
                BATCH.reset(batch)
            records = {parent: self.convert(page) for parent, page in answer.items()}
            if work is not None:
                work.received(sum(len(self.connection_of(r).edges) for r in records.values()))
            return records

        async def load(keys: list[PageKey]) -> list[P | BaseException]:
            pages = await load_pages(keys, fetch)
            records: list[P | BaseException] = []
            for key in keys:
                page = pages[key]
                records.append(self.convert(None) if page is None else page)
            return records

        return load

    async def load(
        self, context: EdgeContext, parent_id: str, first: int | None, after: str | None
    ) -> P:
        """The page of ``parent_id``; a parent id ``parse_key`` refuses has an empty one."""
        try:
            parsed = _parse(self.parse_key, parent_id)
        except BadUserInput:
            return self.convert(None)
        record: P = await _shared(context.loaders.loader(self).load(PageKey(parsed, first, after)))
        return record

    async def load_pages(
        self, context: EdgeContext, parent_ids: Sequence[str], first: int | None, after: str | None
    ) -> list[P | BaseException]:
        """``load`` for many parents at once: each page, or the exception its call raised."""
        keys: list[PageKey | None] = []
        for parent_id in parent_ids:
            try:
                keys.append(PageKey(_parse(self.parse_key, parent_id), first, after))
            except BadUserInput:
                keys.append(None)  # names nothing: an empty page, uncalled
        pages = await context.loaders.loader(self).load_each(keys)
        return [
            self.convert(None) if key is None else page
            for key, page in zip(keys, pages, strict=True)
        ]

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

        async def resolve_all(
            context: EdgeContext, parents: Sequence[Any], arguments: Mapping[str, Any]
        ) -> list[Any]:
            pages = await edge.load_pages(context, [parent_id(p) for p in parents], None, None)
            return [page if isinstance(page, BaseException) else read(page) for page in pages]

        return strawberry.field(resolver=self._mark(resolve, resolve_all), **options)

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
        """A connection with ``first``/``after`` and ``@listSize``; ``first: 0`` calls nothing.

        ``after`` carries ``@cost(weight: "1")``: a page after a cursor is a call
        of its own for each parent, and the estimate counts it once per parent.
        """
        edge = self

        async def resolve(
            root: Any,
            info: strawberry.Info,
            first: int | None = default_first,
            after: _After = strawberry.UNSET,
        ) -> Any:
            request = page_request(first, check_cursor(after), max_first)
            if request is None:
                return EMPTY_CONNECTION
            record = await edge.load(info.context, parent_id(root), request.first, request.after)
            return edge.connection_of(record)

        async def resolve_all(
            context: EdgeContext, parents: Sequence[Any], arguments: Mapping[str, Any]
        ) -> list[Any]:
            try:
                after = check_cursor(arguments.get("after"))
                request = page_request(arguments.get("first"), after, max_first)
            except BadUserInput as refusal:
                return [refusal] * len(parents)
            if request is None:
                return [EMPTY_CONNECTION] * len(parents)
            ids = [parent_id(parent) for parent in parents]
            pages = await edge.load_pages(context, ids, request.first, request.after)
            return [
                page if isinstance(page, BaseException) else edge.connection_of(page)
                for page in pages
            ]

        return strawberry.field(
            resolver=self._mark(resolve, resolve_all),
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
    A key's value is its parent's page, None when the answer omitted it, or the
    exception its call raised: a failed call fails only the keys it was for.
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
        *(fetch(list(ids_by_call[call]), call[0], call[1]) for call in calls),
        return_exceptions=True,
    )
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, Exception):
            raise answer  # cancellation and the like are not a key's answer
    pages_by_call = dict(zip(calls, answers, strict=True))

    def page_of(key: PageKey) -> Any | None:
        answer = pages_by_call[call_for(key)]
        return answer if isinstance(answer, BaseException) else answer.get(key.parent_id)

    return {key: page_of(key) for key in keys}
