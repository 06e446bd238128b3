"""An upstream: a name, the transport stack behind it (``stack``), and the observer hook
around each call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from switchyard.upstream.call import CallScope, ForwardedIdentity, UpstreamRequest
from switchyard.upstream.errors import UpstreamError
from switchyard.upstream.kinds import BUILTIN_KINDS, TransportFactory
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.stack import Stack, build_stack
from switchyard.upstream.transport import Transport

logger = logging.getLogger("switchyard.upstream")


class Upstream:
    """One named backend; ``call`` is the single entry point every client uses::

    accounts = Upstream.from_settings("accounts", settings)
    users = await accounts.call(RestRequest("/users", {"ids": "1,2"}), scope)
    """

    def __init__(
        self,
        name: str,
        settings: UpstreamSettings,
        transport: Transport,
        stack: Stack | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.transport = transport
        self.stack = stack
        self._forward = settings.forward
        self._forwards = settings.forward.bearer_token or settings.forward.identity_headers

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: UpstreamSettings,
        kinds: Mapping[str, TransportFactory] = BUILTIN_KINDS,
    ) -> Upstream:
        """One transport per instance from the table of ``kinds``, in the layers of
        ``switchyard.upstream.stack`` (coalescing, cache, retries, bulkhead, balancing,
        breakers)."""
        stack = build_stack(name, settings, kinds)
        return cls(name, settings, stack.transport, stack)

    async def call(self, request: UpstreamRequest, scope: CallScope) -> Any:
        """Send ``request``; raise an ``UpstreamError`` subclass on failure."""
        started = time.perf_counter()
        error: BaseException | None = None
        if self._forwards and scope.identity is not None:
            scope = self._with_identity(scope, scope.identity)
        try:
            return await self.transport.handle(request, scope)
        except UpstreamError as exc:
            error = exc
            logger.warning(
                "upstream call failed: %s",
                exc,
                extra={"upstream": self.name, "request_id": scope.request_id},
            )
            raise
        finally:
            if scope.observer is not None:
                scope.observer.call_finished(
                    self.name, request.operation, time.perf_counter() - started, error
                )

    def _with_identity(self, scope: CallScope, identity: ForwardedIdentity) -> CallScope:
        forwarded = identity.headers(
            bearer_token=self._forward.bearer_token, identity=self._forward.identity_headers
        )
        return scope.with_headers(forwarded)

    async def check(self, timeout: float) -> bool:
        return await self.transport.check(timeout)

    def state(self) -> dict[str, Any]:
        """Each instance's breaker and health, and the layers' counters (``/readyz``)."""
        return {} if self.stack is None else self.stack.snapshot()

    def start(self) -> None:
        """Start the background work (health checks); inside the serving event loop."""
        if self.stack is not None and self.stack.health is not None:
            self.stack.health.start()

    async def aclose(self) -> None:
        if self.stack is not None and self.stack.health is not None:
            await self.stack.health.aclose()
        await self.transport.aclose()


class Upstreams(Mapping[str, Upstream]):
    """Every configured upstream by name, opened at start-up and closed at shutdown."""

    def __init__(self, upstreams: Mapping[str, Upstream]) -> None:
        self._upstreams = dict(upstreams)

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, UpstreamSettings],
        kinds: Mapping[str, TransportFactory] = BUILTIN_KINDS,
    ) -> Upstreams:
        return cls({name: Upstream.from_settings(name, s, kinds) for name, s in settings.items()})

    def __getitem__(self, name: str) -> Upstream:
        return self._upstreams[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._upstreams)

    def __len__(self) -> int:
        return len(self._upstreams)

    async def readiness(self, timeout: float) -> dict[str, bool]:
        """Whether each upstream is reachable right now."""
        names = list(self._upstreams)
        answers = await asyncio.gather(*(self._upstreams[n].check(timeout) for n in names))
        return dict(zip(names, answers, strict=True))

    def state(self) -> dict[str, dict[str, Any]]:
        """``Upstream.state()`` of each upstream, by name."""
        return {name: upstream.state() for name, upstream in self._upstreams.items()}

    def start(self) -> None:
        """Start every upstream's health checks (the app's lifespan does, once)."""
        for upstream in self._upstreams.values():
            upstream.start()

    async def aclose(self) -> None:
        await asyncio.gather(*(u.aclose() for u in self._upstreams.values()))
