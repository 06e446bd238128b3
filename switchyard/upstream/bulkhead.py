"""A bulkhead: at most ``max_concurrency`` calls of one upstream in flight.

A call beyond the limit waits up to ``max_concurrency_wait`` seconds (and never
past the request's deadline) for a slot, then fails fast with ``UpstreamRefused``
(client code ``UPSTREAM_UNAVAILABLE``): a slow service holds a bounded share of
the gateway, and what it cannot take is refused at once rather than queued.
"""

from __future__ import annotations

import asyncio
from typing import Any

from switchyard.upstream.call import CallScope, UpstreamRequest
from switchyard.upstream.errors import UpstreamRefused
from switchyard.upstream.transport import Transport


class Bulkhead(Transport):
    """Limits the calls in flight through ``inner``; counters for tests and metrics."""

    def __init__(self, inner: Transport, *, name: str, limit: int, wait: float) -> None:
        self.inner = inner
        self.name = name
        self.limit = limit
        self.wait = wait
        self._slots = asyncio.Semaphore(limit)
        self.in_flight = 0
        self.peak = 0
        self.rejected = 0

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        slots = self._slots
        if slots.locked():
            await self._wait_for_slot(request, scope)
        else:
            await slots.acquire()  # free: returns without suspending
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self.inner.handle(request, scope)
        finally:
            self.in_flight -= 1
            slots.release()

    async def _wait_for_slot(self, request: UpstreamRequest, scope: CallScope) -> None:
        remaining = scope.remaining()
        wait = self.wait if remaining is None else min(self.wait, remaining)
        try:
            if wait <= 0:
                raise TimeoutError
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            self.rejected += 1
            raise UpstreamRefused(
                self.name, request.operation, f"{self.limit} calls in flight already"
            ) from None

    def snapshot(self) -> dict[str, Any]:
        return {"limit": self.limit, "in_flight": self.in_flight, "rejected": self.rejected}

    async def check(self, timeout: float) -> bool:
        return await self.inner.check(timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()
