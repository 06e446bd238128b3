"""The layers every call of one upstream goes through, assembled in one place.

Each layer is a ``Transport`` wrapping the next; a disabled feature adds no layer.
Outermost first:

    layer      unit                          decides                            settings
    ---------  ----------------------------  ---------------------------------  ---------------
    coalesce   coalescing.Coalescing         whether an identical read in       coalesce
                                             flight answers this one
    cache      cache.ResponseCache           whether a stored answer does       cache
    retry      retry.Retrying                whether a failed idempotent call   retry
                                             is sent again, and when
    bulkhead   bulkhead.Bulkhead             whether the upstream has room for  max_concurrency
                                             one more call; else refused
    balance    balancing.Balancer            which admitted instance takes it;  balancing
                                             none admitted: refused
    breaker    breaker.CircuitBreaker,       whether the instance is called at  breaker
               one per instance              all; open: refused
    transport  the kind's, one per instance  the wire: HTTP or gRPC             kind

Active health checks (``health.HealthChecker``) run beside the stack, ejecting and
re-admitting instances in the balancer; ``Upstreams.start()`` starts them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from switchyard.upstream.balancing import Balancer, Instance
from switchyard.upstream.breaker import CircuitBreaker
from switchyard.upstream.bulkhead import Bulkhead
from switchyard.upstream.cache import ResponseCache
from switchyard.upstream.coalescing import Coalescing
from switchyard.upstream.health import HealthChecker
from switchyard.upstream.kinds import BUILTIN_KINDS, TransportFactory
from switchyard.upstream.retry import Retrying
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.transport import Transport
from switchyard.upstream.window import Clock

Layer = Callable[[Transport], Transport]
"""Wraps the rest of the stack: ``lambda inner: Coalescing(inner, ...)``."""


def outer_layers(name: str, settings: UpstreamSettings) -> list[Layer]:
    """The layers above retry, outermost first: coalescing, then the response cache.

    Each adds itself here in one line when its settings enable it.
    """
    return [
        lambda inner: Coalescing.around(name, settings, inner),
        lambda inner: ResponseCache.around(name, settings, inner),
    ]


@dataclass
class Stack:
    """One upstream's assembled layers; the optional ones are None when disabled."""

    transport: Transport
    """The outermost layer: what ``Upstream.call`` sends through."""
    balancer: Balancer
    retry: Retrying | None = None
    bulkhead: Bulkhead | None = None
    health: HealthChecker | None = None
    instances: Sequence[Instance] = field(default_factory=tuple)

    def snapshot(self) -> dict[str, Any]:
        """Instances (by position, never address) and the layers' counters, for ``/readyz``."""
        state: dict[str, Any] = {"instances": [i.snapshot() for i in self.instances]}
        if self.retry is not None:
            state["retry"] = self.retry.snapshot()
        if self.bulkhead is not None:
            state["bulkhead"] = self.bulkhead.snapshot()
        return state


def build_stack(
    name: str,
    settings: UpstreamSettings,
    kinds: Mapping[str, TransportFactory] = BUILTIN_KINDS,
    *,
    outer: Sequence[Layer] | None = None,
    clock: Clock | None = None,
) -> Stack:
    """The stack of upstream ``name``, innermost first in code, from its settings.

    ``outer`` replaces ``outer_layers``; ``clock`` replaces ``time.monotonic`` in the
    breakers and the retry budget (tests).
    """
    try:
        factory = kinds[settings.kind]
    except KeyError:
        raise ValueError(f"upstreams.{name}.kind: unknown kind {settings.kind!r}") from None
    timing: dict[str, Any] = {} if clock is None else {"clock": clock}

    instances = []
    for index, address in enumerate(settings.instances):
        transport = factory(name, address, settings)
        breaker = None
        if settings.breaker.enabled:
            transport = breaker = CircuitBreaker(
                transport, settings.breaker, name=name, instance=f"#{index}", **timing
            )
        instances.append(Instance(index, address, transport, breaker))
    balancer = Balancer(name, instances, settings.balancing)
    stack = Stack(transport=balancer, balancer=balancer, instances=tuple(instances))

    if settings.health_checked:
        stack.health = HealthChecker(name, instances, settings.health)
    if settings.max_concurrency is not None:
        stack.transport = stack.bulkhead = Bulkhead(
            stack.transport,
            name=name,
            limit=settings.max_concurrency,
            wait=settings.max_concurrency_wait,
        )
    if settings.retry.enabled and settings.retry.attempts > 1:
        stack.transport = stack.retry = Retrying(
            stack.transport,
            settings.retry,
            name=name,
            idempotent_upstream=settings.idempotent,
            timeout=settings.timeout,
            **timing,
        )
    for layer in reversed(outer_layers(name, settings) if outer is None else outer):
        stack.transport = layer(stack.transport)
    return stack
