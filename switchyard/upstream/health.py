"""Active health checks: each instance probed every ``interval`` seconds.

HTTP instances are asked their ``health_path`` (2xx is healthy), gRPC ones the
standard health checking protocol (``grpc.health.v1.Health/Check``, ``SERVING``):
each transport's own ``check``. ``unhealthy_threshold`` failed checks in a row
eject an instance from the balancer; ``healthy_threshold`` passed ones re-admit it.

Started by ``Upstreams.start()`` in the app's lifespan, stopped by ``aclose()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from switchyard.upstream.balancing import Instance
from switchyard.upstream.settings import HealthSettings

logger = logging.getLogger("switchyard.upstream")

Sleep = Callable[[float], Awaitable[None]]


class HealthChecker:
    """Checks the instances of one upstream; counters for tests and metrics."""

    def __init__(
        self,
        name: str,
        instances: Sequence[Instance],
        settings: HealthSettings,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.instances = tuple(instances)
        self.settings = settings
        self._sleep = sleep
        self._streaks = [0] * len(self.instances)  # > 0: passes in a row, < 0: failures
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self.ejections = 0
        self.readmissions = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"health checks of {self.name}")

    async def check_once(self) -> None:
        """One round: check every instance at once, then eject or re-admit."""
        answers = await asyncio.gather(*(self._check(i) for i in self.instances))
        for position, (instance, healthy) in enumerate(zip(self.instances, answers, strict=True)):
            self._update(position, instance, healthy)
        self.rounds += 1

    async def _check(self, instance: Instance) -> bool:
        timeout = self.settings.timeout
        try:
            async with asyncio.timeout(timeout):
                return await instance.transport.check(timeout)
        except TimeoutError:
            return False

    def _update(self, position: int, instance: Instance, healthy: bool) -> None:
        before = self._streaks[position]
        streak = max(before, 0) + 1 if healthy else min(before, 0) - 1
        self._streaks[position] = streak
        if instance.healthy and -streak >= self.settings.unhealthy_threshold:
            instance.healthy = False
            self.ejections += 1
            logger.warning(
                "instance #%d of %s ejected: %d failed health checks",
                instance.index,
                self.name,
                -streak,
                extra={"upstream": self.name},
            )
        elif not instance.healthy and streak >= self.settings.healthy_threshold:
            instance.healthy = True
            self.readmissions += 1
            logger.info(
                "instance #%d of %s re-admitted",
                instance.index,
                self.name,
                extra={"upstream": self.name},
            )

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:  # a bug must not stop the checks for good
                logger.exception("health checks of %s failed", self.name)
            await self._sleep(self.settings.interval)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
