"""Spreading calls over the instances of one upstream."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

from switchyard.upstream.call import CallScope, UpstreamRequest
from switchyard.upstream.transport import Transport


class RoundRobin(Transport):
    """Sends each call to the next instance in turn::

    transport = RoundRobin([first_instance, second_instance])
    """

    def __init__(self, instances: Sequence[Transport]) -> None:
        if not instances:
            raise ValueError("RoundRobin needs at least one instance")
        self.instances = tuple(instances)
        self._next = itertools.cycle(self.instances)

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        return await next(self._next).handle(request, scope)

    async def check(self, timeout: float) -> bool:
        """Ready when at least one instance is."""
        answers = await asyncio.gather(*(i.check(timeout) for i in self.instances))
        return any(answers)

    async def aclose(self) -> None:
        await asyncio.gather(*(i.aclose() for i in self.instances))
