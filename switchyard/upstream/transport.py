"""The one interface through which every upstream call passes.

Following httpx, a transport owns I/O and exposes one method. Policies such as
load balancing (``upstreams.balancing``), and later retries and circuit
breaking, are transports that wrap transports, so each is written once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from switchyard.upstream.call import CallScope, UpstreamRequest
from switchyard.upstream.errors import UpstreamTimeout


class Transport(ABC):
    """Sends one request to one upstream and returns the decoded answer.

    Raises only ``upstreams.errors.UpstreamError`` subclasses.
    """

    @abstractmethod
    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        """Send ``request`` within ``scope``'s deadline; return JSON (REST) or a message (gRPC)."""

    @abstractmethod
    async def check(self, timeout: float) -> bool:
        """Whether the upstream is reachable and serving (used by readiness probes)."""

    async def aclose(self) -> None:
        """Release connections; the transport is not used afterwards."""


def call_timeout(
    limit: float, scope: CallScope, upstream: str, operation: str, minimum: float = 0.0
) -> float:
    """The seconds one call may take: its own limit, capped by the request's deadline.

    Raises ``UpstreamTimeout`` without calling when the deadline has passed, or when less
    than ``minimum`` (the upstream's ``min_call_time``) is left of it: a call that cannot
    be answered in time is not started.
    """
    remaining = scope.remaining()
    if remaining is None:
        return limit
    if remaining <= 0:
        raise UpstreamTimeout(upstream, operation, "request deadline already passed")
    if remaining < minimum:
        raise UpstreamTimeout(
            upstream,
            operation,
            f"not started: {remaining:.3f} s left of the request deadline, "
            f"min_call_time is {minimum} s",
        )
    return min(limit, remaining)
