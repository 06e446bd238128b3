"""HTTP edge: at most ``[server] max_in_flight`` requests served at once.

Beyond the limit a request is answered at once, before authentication or
parsing, with ``503``, ``Retry-After`` and a GraphQL error body whose code is
``OVERLOADED``: an overloaded gateway sheds what it cannot serve rather than
slowing every request down. Health probes (``/healthz``, ``/readyz``) are
neither counted nor refused, so an orchestrator still sees the process alive.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard.errors import ErrorCode, GraphError, error_response

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
"""Paths never counted nor refused: the gateway's own health probes."""

logger = logging.getLogger("switchyard.request")


class Overloaded(GraphError):
    """The gateway is serving as many requests as it may; the client should retry later."""

    code = ErrorCode.OVERLOADED


class InFlightLimit:
    """Pure ASGI middleware counting the HTTP requests in flight and refusing those beyond
    ``max_in_flight`` (lifespan and health probes pass through uncounted).

    ``in_flight`` and ``refused`` are read by tests and could be by metrics.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        retry_after: int = 1,
        exempt_paths: Collection[str] = HEALTH_PATHS,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.exempt_paths = frozenset(exempt_paths)
        self.in_flight = 0
        self.refused = 0
        self._headers = {"retry-after": str(retry_after)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await self._refuse(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:
            logger.warning(
                "overloaded: %d requests in flight, %d refused since start",
                self.in_flight,
                self.refused,
                extra={"stage": "http"},
            )
        request_id = scope.get("state", {}).get("request_id", "-")
        error = Overloaded(
            "The gateway is serving as many requests as it can; retry later.",
            retryAfter=self.retry_after,
        )
        response = error_response(error, request_id, headers=self._headers)
        await response(scope, receive, send)


def in_flight_limit(max_in_flight: int, retry_after: int) -> list[Middleware]:
    """The ``http`` stage's unit for ``[server] max_in_flight``: none when it is 0 (off)."""
    if max_in_flight <= 0:
        return []
    return [Middleware(InFlightLimit, max_in_flight=max_in_flight, retry_after=retry_after)]
