"""The layer under every instance's transport that metrics and traces watch calls from.

``instrumented(kinds, ...)`` wraps each kind's factory, so each instance's transport
is wrapped once, below its breaker: every call that goes on the wire (each retry
too) is counted and timed by upstream and instance, and, with tracing, has its own
span whose trace context goes along in the call's headers (gRPC: metadata).
Health checks (``check``) are counted apart (``purpose="health"``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from switchyard.telemetry.metrics import GatewayMetrics
from switchyard.telemetry.record import BATCH
from switchyard.telemetry.tracing import Tracing
from switchyard.upstream.call import CallScope, UpstreamRequest
from switchyard.upstream.kinds import TransportFactory
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.transport import Transport


class InstrumentedTransport(Transport):
    """One instance's transport, observed (see the module's docs)."""

    def __init__(
        self,
        inner: Transport,
        *,
        upstream: str,
        instance: str,
        metrics: GatewayMetrics | None,
        tracing: Tracing | None,
    ) -> None:
        self.inner = inner
        self.upstream = upstream
        self.instance = instance
        self.metrics = metrics
        self.tracing = tracing

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        traced = None
        if self.tracing is not None:
            traced = self.tracing.start_call(
                self.upstream, self.instance, request.operation, BATCH.get()
            )
            headers = traced.headers()
            if headers:
                scope = scope.with_headers(headers)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await self.inner.handle(request, scope)
        except BaseException as exc:  # cancellations too: the call did not answer
            error = exc
            raise
        finally:
            if self.metrics is not None:
                self.metrics.upstream_call(
                    self.upstream, self.instance, time.perf_counter() - started, error
                )
            if traced is not None:
                self.tracing.end_call(traced, error)  # type: ignore[union-attr]

    async def check(self, timeout: float) -> bool:
        healthy = await self.inner.check(timeout)
        if self.metrics is not None:
            self.metrics.health_check(self.upstream, self.instance, healthy)
        return healthy

    async def aclose(self) -> None:
        await self.inner.aclose()


def instrumented(
    kinds: Mapping[str, TransportFactory],
    metrics: GatewayMetrics | None,
    tracing: Tracing | None,
) -> dict[str, TransportFactory]:
    """``kinds`` whose every instance transport is an ``InstrumentedTransport``."""

    def wrap(factory: TransportFactory) -> TransportFactory:
        def make(name: str, address: str, settings: UpstreamSettings) -> Transport:
            instances = list(settings.instances)
            index = instances.index(address) if address in instances else 0
            return InstrumentedTransport(
                factory(name, address, settings),
                upstream=name,
                instance=f"#{index}",
                metrics=metrics,
                tracing=tracing,
            )

        return make

    return {kind: wrap(factory) for kind, factory in kinds.items()}
