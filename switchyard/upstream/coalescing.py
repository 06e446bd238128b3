"""Coalescing: identical upstream reads in flight at the same time share one network call.

Two calls are identical when they go to the same upstream with the same
request (REST: method, path, parameters and headers; gRPC: method, serialized
message and metadata) and the same forwarded headers (the caller's identity
and token, when the upstream is sent them; a request's own ``x-request-id``
and trace context do not count). Only reads are shared: REST ``GET``/``HEAD``
without a body, idempotent gRPC calls.

The first request's call is the one sent, with that request's scope (its
deadline, request id and trace context); the others wait for its answer, each
within its own deadline, and are told they joined it through their observer's
optional ``call_joined(upstream, operation, request_id)`` (the tracing hook).
Each request's ``Upstream.call`` still reports a finished call to its own
observer, so every request is charged for the answer it received as if it
had made the call. Every sharer receives the same answer object: answers are
read-only, as the loaders' shared answers already are.

If the first request is cancelled, its call is too; a request that was waiting
for it then makes the call itself (or joins the next one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any, Protocol

from switchyard.upstream.call import CallScope, GrpcRequest, RestRequest, UpstreamRequest
from switchyard.upstream.errors import UpstreamTimeout
from switchyard.upstream.headers import HeaderCapture
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.transport import Transport

PER_REQUEST_HEADERS = frozenset({"x-request-id", "traceparent", "tracestate", "baggage"})
"""Scope headers that name the request rather than the caller: left out of the key."""
READ_METHODS = frozenset({"GET", "HEAD"})


class JoinObserver(Protocol):
    """What an observer may add to learn that a call was shared rather than sent."""

    def call_joined(self, upstream: str, operation: str, request_id: str | None) -> None: ...


def read_key(request: UpstreamRequest) -> Hashable | None:
    """What makes two reads the same read; None for a request that is not a read.

    >>> read_key(RestRequest("/users", {"ids": "1,2"}))
    ('GET', '/users', (('ids', '1,2'),), ())
    >>> read_key(RestRequest("/reviews", method="POST", json={}))
    """
    if isinstance(request, RestRequest):
        if request.method not in READ_METHODS or request.json is not None or request.form:
            return None
        return (
            request.method,
            request.path,
            tuple(sorted(request.params.items())),
            tuple(sorted(request.headers.items())),
        )
    if isinstance(request, GrpcRequest):
        if not request.idempotent:
            return None
        return (
            request.method,
            request.message.SerializeToString(deterministic=True),
            tuple(sorted(request.metadata.items())),
        )
    return None


def forwarded_headers(scope: CallScope) -> tuple[tuple[str, str], ...]:
    """The scope's headers that may change an answer: all but the request's own names."""
    return tuple(
        sorted(
            (name.lower(), value)
            for name, value in scope.headers.items()
            if name.lower() not in PER_REQUEST_HEADERS
        )
    )


class _Flight:
    __slots__ = ("capture", "future", "request_id", "sharers")

    def __init__(self, future: asyncio.Future[Any], request_id: str | None) -> None:
        self.future = future
        self.capture = HeaderCapture()
        self.request_id = request_id
        self.sharers = 0


class _LeaderGone(Exception):
    """The request that made the shared call was cancelled before it was answered."""


class Coalescing(Transport):
    """Shares one call of ``inner`` between identical reads in flight at the same time.

    ``calls`` counts the calls sent on behalf of reads, ``joined`` the reads that
    waited for one of them instead.
    """

    def __init__(self, name: str, inner: Transport) -> None:
        self.name = name
        self.inner = inner
        self.calls = 0
        self.joined = 0
        self._flights: dict[Hashable, _Flight] = {}

    @classmethod
    def around(cls, name: str, settings: UpstreamSettings, inner: Transport) -> Transport:
        """``inner`` coalesced when ``[upstreams.NAME] coalesce`` is on (the default)."""
        return cls(name, inner) if settings.coalesce else inner

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        read = read_key(request)
        if read is None:
            return await self.inner.handle(request, scope)
        key = (read, forwarded_headers(scope))
        while True:
            flight = self._flights.get(key)
            if flight is None:
                return await self._lead(key, request, scope)
            try:
                return await self._join(flight, request, scope)
            except _LeaderGone:
                continue

    async def _lead(self, key: Hashable, request: UpstreamRequest, scope: CallScope) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        flight = self._flights[key] = _Flight(future, scope.request_id)
        self.calls += 1
        try:
            answer = await self.inner.handle(request, flight.capture.scope(scope))
        except asyncio.CancelledError:
            self._land(key, flight)
            future.set_exception(_LeaderGone())
            future.exception()  # retrieved: nobody may be waiting
            raise
        except BaseException as exc:
            self._land(key, flight)
            future.set_exception(exc)
            future.exception()
            flight.capture.forward(scope)
            raise
        self._land(key, flight)
        future.set_result(answer)
        flight.capture.forward(scope)
        return answer

    async def _join(self, flight: _Flight, request: UpstreamRequest, scope: CallScope) -> Any:
        self.joined += 1
        flight.sharers += 1
        note = getattr(scope.observer, "call_joined", None)
        if note is not None:
            note(self.name, request.operation, flight.request_id)
        remaining = scope.remaining()
        try:
            async with asyncio.timeout(remaining):
                answer = await asyncio.shield(flight.future)
        except TimeoutError as exc:
            if flight.future.done():
                raise
            raise UpstreamTimeout(
                self.name, request.operation, "request deadline passed waiting for a shared call"
            ) from exc
        except _LeaderGone:
            raise
        except BaseException:
            flight.capture.forward(scope)
            raise
        flight.capture.forward(scope)
        return answer

    def _land(self, key: Hashable, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    @property
    def in_flight(self) -> int:
        """Distinct reads being answered now."""
        return len(self._flights)

    async def check(self, timeout: float) -> bool:
        return await self.inner.check(timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()
