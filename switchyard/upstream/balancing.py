"""Spreading calls over the admitted instances of one upstream.

An instance is admitted while its circuit breaker lets calls through
(``breaker``) and its active health checks have not ejected it (``health``).
Among those the balancer picks the one with the fewest calls outstanding
(``least_outstanding``, the default; ties taken in turn) or the next in turn
(``round_robin``). With none admitted it fails fast with ``UpstreamRefused``.

Within one call's retries (``retry``) an instance already tried is avoided while
another is admitted, so a retry after a refused connection goes elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, Literal

from switchyard.upstream.breaker import CircuitBreaker
from switchyard.upstream.call import CallScope, UpstreamRequest
from switchyard.upstream.errors import UpstreamRefused
from switchyard.upstream.transport import Transport

Policy = Literal["least_outstanding", "round_robin"]


class Instance:
    """One instance as the balancer sees it: where calls go, and whether it is admitted."""

    __slots__ = ("address", "breaker", "calls", "healthy", "index", "outstanding", "transport")

    def __init__(
        self,
        index: int,
        address: str,
        transport: Transport,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.index = index
        self.address = address
        self.transport = transport
        """The instance's own transport, behind its breaker when there is one."""
        self.breaker = breaker
        self.healthy = True
        """Set by the health checks (``health``); an instance starts admitted."""
        self.outstanding = 0
        self.calls = 0

    def admitted(self) -> bool:
        return self.healthy and (self.breaker is None or self.breaker.available())

    def snapshot(self) -> dict[str, Any]:
        """What ``/readyz`` shows of it (never its address)."""
        state: dict[str, Any] = {
            "admitted": self.admitted(),
            "healthy": self.healthy,
            "outstanding": self.outstanding,
        }
        if self.breaker is not None:
            state["breaker"] = self.breaker.state.value
        return state


TRIED: ContextVar[set[Instance] | None] = ContextVar("switchyard_tried_instances", default=None)
"""The instances tried by the current call's attempts, set by the retry layer."""


class Balancer(Transport):
    """Sends each call to one admitted instance::

    transport = Balancer("catalog", [Instance(0, "10.0.0.5:7004", first), ...])
    """

    def __init__(
        self, name: str, instances: Sequence[Instance], policy: Policy = "least_outstanding"
    ) -> None:
        if not instances:
            raise ValueError("a balancer needs at least one instance")
        self.name = name
        self.instances = tuple(instances)
        self.policy = policy
        self._turn = 0
        self.refused = 0

    def choose(self, operation: str) -> Instance:
        """The instance for the next call; ``UpstreamRefused`` when none is admitted."""
        candidates = [i for i in self.instances if i.admitted()]
        if not candidates:
            self.refused += 1
            raise UpstreamRefused(self.name, operation, "every instance is ejected")
        tried = TRIED.get()
        if tried:
            fresh = [i for i in candidates if i not in tried]
            candidates = fresh or candidates
        self._turn += 1
        start = self._turn % len(candidates)
        if self.policy == "round_robin" or len(candidates) == 1:
            chosen = candidates[start]
        else:
            ordered = candidates[start:] + candidates[:start]
            chosen = min(ordered, key=_outstanding)
        if tried is not None:
            tried.add(chosen)
        return chosen

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        instance = self.choose(request.operation)
        instance.outstanding += 1
        instance.calls += 1
        try:
            return await instance.transport.handle(request, scope)
        finally:
            instance.outstanding -= 1

    async def check(self, timeout: float) -> bool:
        """Ready when at least one instance is."""
        answers = await asyncio.gather(*(i.transport.check(timeout) for i in self.instances))
        return any(answers)

    async def aclose(self) -> None:
        await asyncio.gather(*(i.transport.aclose() for i in self.instances))


def _outstanding(instance: Instance) -> int:
    return instance.outstanding


class RoundRobin(Balancer):
    """Plain transports in turn, without breakers or health checks::

    transport = RoundRobin([first_instance, second_instance])
    """

    def __init__(self, instances: Sequence[Transport], name: str = "") -> None:
        members = [Instance(k, str(k), transport) for k, transport in enumerate(instances)]
        super().__init__(name, members, "round_robin")
